// Google-benchmark binary for the kernels (not run by the test suite):
//   build/dev/src/kernels/kernels_bench [--benchmark_filter=...]
// Matmul on Qwen3-0.6B shapes for every ISA this CPU runs and every plain format, M = 1 (decode
// GEMV, reported in bytes of weights per second) and M = 512 (prefill GEMM, FLOP/s), on 1 and 2
// threads of the persistent pool; gemm/...: M = 16 (batched decode) and 512 for BF16, FP8 128x128,
// NVFP4 and MXFP4 on the AVX-512 ISAs.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/float16.h"
#include "base/thread_pool.h"
#include "formats/block_format.h"
#include "kernels/kernel_table.h"
#include "kernels/ops.h"

namespace nibble::kernels {
namespace {

struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> scales;
  MatWeight view;
};

Weights make_weights(WeightFormat format, int64_t n, int64_t k) {
  Weights w;
  if (const formats::BlockFormat* block = block_format_of(format); block != nullptr) {
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 0.05f);
    std::vector<float> vals(static_cast<size_t>(n * k));
    for (auto& v : vals) v = dist(rng);
    auto q = formats::quantize_tensor(*block, vals, n, k);
    if (!q.ok()) return w;
    w.bytes = std::move(q->data);
    w.scales = std::move(q->scales);
    w.view.format = format;
    w.view.num_rows = n;
    w.view.num_cols = k;
    w.view.row_bytes = q->layout.row_bytes;
    w.view.data = w.bytes.data();
    w.view.block_scales = w.scales.data();
    w.view.scale_row_bytes = q->layout.scale_cols * block->scale->bytes;
    w.view.scale_tile_rows = q->layout.tile_rows;
    w.view.tensor_scale = q->tensor_scale;
    return w;
  }
  const int elem_bytes = weight_format_info(format).block_bytes;
  w.bytes.resize(static_cast<size_t>(n * k * elem_bytes));
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  for (int64_t i = 0; i < n * k; ++i) {
    const float v = dist(rng);
    if (format == WeightFormat::kF32) {
      std::memcpy(w.bytes.data() + i * 4, &v, 4);
    } else {
      const uint16_t h = format == WeightFormat::kBF16 ? base::float_to_bf16(v) : base::float_to_f16(v);
      std::memcpy(w.bytes.data() + i * 2, &h, 2);
    }
  }
  w.view.format = format;
  w.view.num_rows = n;
  w.view.num_cols = k;
  w.view.row_bytes = k * elem_bytes;
  w.view.data = w.bytes.data();
  return w;
}

void bm_matmul(benchmark::State& state, std::string isa, WeightFormat format, int64_t m, int64_t n,
               int64_t k) {
  auto table = make_kernel_table(isa);
  if (!table.ok()) {
    state.SkipWithError(table.status().message().c_str());
    return;
  }
  const Weights w = make_weights(format, n, k);
  if (w.view.data == nullptr) {
    state.SkipWithError("cannot quantize the weights");
    return;
  }
  std::vector<float> x(static_cast<size_t>(m * k), 0.01f), y(static_cast<size_t>(m * n));
  base::ThreadPool pool(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    matmul(*table, pool, x.data(), m, w.view, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  const double iters = static_cast<double>(state.iterations());
  state.counters["FLOP/s"] =
      benchmark::Counter(2.0 * static_cast<double>(m * n * k) * iters, benchmark::Counter::kIsRate);
  state.counters["weight_B/s"] = benchmark::Counter(static_cast<double>(w.bytes.size() + w.scales.size()) * iters,
                                                    benchmark::Counter::kIsRate);
}

// The FMA peak probe of an ISA, one thread: compare its CPU-time FLOP/s with the matmuls'.
void bm_fma_probe(benchmark::State& state, std::string isa) {
  auto table = make_kernel_table(isa);
  if (!table.ok()) {
    state.SkipWithError(table.status().message().c_str());
    return;
  }
  float sink = 0;
  double flops = 0;
  for (auto _ : state) flops += table->fma_probe(1 << 20, &sink);
  benchmark::DoNotOptimize(sink);
  state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsRate);
}

// The streaming-read probe over 512 MiB (past every cache), one thread, in bytes/s.
void bm_read_probe(benchmark::State& state, std::string isa) {
  auto table = make_kernel_table(isa);
  if (!table.ok()) {
    state.SkipWithError(table.status().message().c_str());
    return;
  }
  std::vector<float> buffer(size_t{128} << 20, 1.0f);
  for (auto _ : state)
    benchmark::DoNotOptimize(table->read_probe(buffer.data(), static_cast<int64_t>(buffer.size())));
  state.counters["B/s"] = benchmark::Counter(
      static_cast<double>(buffer.size() * sizeof(float)) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

// The streaming-read probe over a buffer of `bytes` (state.range(1)) on state.range(0) threads of
// the pool, each reading its own slice: the speed of light for a GEMV over that many weight bytes
// (same cache level as the matmul benchmarks of that size).
void bm_read_probe_sized(benchmark::State& state, std::string isa) {
  auto table = make_kernel_table(isa);
  if (!table.ok()) {
    state.SkipWithError(table.status().message().c_str());
    return;
  }
  const int64_t num_floats = state.range(1) / 4;
  std::vector<float> buffer(static_cast<size_t>(num_floats), 1.0f);
  base::ThreadPool pool(static_cast<int>(state.range(0)));
  float sums[64] = {};
  for (auto _ : state) {
    pool.parallel_for(num_floats, 4096, [&](int64_t begin, int64_t end) {
      sums[(begin * 8 / num_floats) % 8] = table->read_probe(buffer.data() + begin, end - begin);
    });
    benchmark::DoNotOptimize(sums);
  }
  state.counters["B/s"] = benchmark::Counter(static_cast<double>(num_floats * 4) * static_cast<double>(state.iterations()),
                                             benchmark::Counter::kIsRate);
}

// Decode GEMV (1 token) for every weight format on the Qwen3-0.6B shapes, rows x cols (up/gate
// 3072x1024, down 1024x3072, fused qkv-like 4096x1024 and its transpose), plus 256x1024 whose
// weights stay in L2: that one shows the kernel's compute ceiling, the others L3 streaming; and
// 65536x2048 (64 MiB at 4 bits), streamed from DRAM like a model's weights.
void register_gemv_formats(const std::string& isa) {
  struct Shape {
    const char* name;
    int64_t n, k;
  };
  const Shape shapes[] = {{"1024x3072", 1024, 3072},
                          {"3072x1024", 3072, 1024},
                          {"4096x1024", 4096, 1024},
                          {"1024x4096", 1024, 4096},
                          {"256x1024", 256, 1024},
                          {"65536x2048", 65536, 2048}};
  for (int f = 0; f < kNumWeightFormats; ++f) {
    const auto format = static_cast<WeightFormat>(f);
    if (format == WeightFormat::kF32 || format == WeightFormat::kF16) continue;
    const std::string fmt(weight_format_info(format).name);
    for (const Shape& s : shapes) {
      benchmark::RegisterBenchmark((std::string("gemv/") + isa + "/" + fmt + "/" + s.name).c_str(), bm_matmul,
                                   isa, format, 1, s.n, s.k)
          ->Arg(1)
          ->Arg(2)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

void register_all() {
  for (const auto& info : known_isas()) {
    if (!info.supported()) continue;
    const std::string isa(info.name);
    benchmark::RegisterBenchmark((std::string("fma_probe/") + isa).c_str(), bm_fma_probe, isa);
    benchmark::RegisterBenchmark((std::string("read_probe/") + isa).c_str(), bm_read_probe, isa)
        ->UseRealTime();
    // Prefill (512 tokens) and batched decode (16 tokens) GEMMs: up/gate (3072x1024), down
    // (1024x3072), for the formats models ship in.
    for (WeightFormat format :
         {WeightFormat::kBF16, WeightFormat::kFP8Block, WeightFormat::kNVFP4, WeightFormat::kMXFP4}) {
      if (isa == "ref" || isa == "avx2") break;
      const std::string fmt(weight_format_info(format).name);
      struct Shape {
        const char* name;
        int64_t m, n, k;
      };
      const Shape shapes[] = {{"gemm16_up", 16, 3072, 1024},
                              {"gemm16_down", 16, 1024, 3072},
                              {"gemm512_up", 512, 3072, 1024},
                              {"gemm512_down", 512, 1024, 3072}};
      for (const Shape& sh : shapes) {
        benchmark::RegisterBenchmark((std::string("gemm/") + isa + "/" + fmt + "/" + sh.name).c_str(),
                                     bm_matmul, isa, format, sh.m, sh.n, sh.k)
            ->Arg(1)
            ->Arg(2)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
    // Read probes the size of the GEMV weights below: 1.5 MiB (4-bit 3M), 3 MiB (FP8), 6 MiB (BF16),
    // 2 and 8 MiB (4M values).
    benchmark::RegisterBenchmark((std::string("read_probe_sized/") + isa).c_str(), bm_read_probe_sized, isa)
        ->ArgsProduct({{1, 2}, {3 << 19, 3 << 20, 3 << 21, 2 << 20, 4 << 20, 8 << 20}})
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
    if (isa != "ref") register_gemv_formats(isa);
    for (WeightFormat format : {WeightFormat::kBF16, WeightFormat::kF16, WeightFormat::kF32}) {
      const std::string fmt(weight_format_info(format).name);
      struct Shape {
        const char* name;
        int64_t m, n, k;
      };
      // Decode: up/gate (3072x1024) and down (1024x3072); prefill: the same with 512 tokens.
      const Shape shapes[] = {{"gemv_up", 1, 3072, 1024},
                              {"gemv_down", 1, 1024, 3072},
                              {"gemv_lm_head", 1, 151936, 1024},
                              {"gemm512_up", 512, 3072, 1024}};
      for (const Shape& s : shapes) {
        if (isa == "ref" && s.m > 1) continue;  // minutes per iteration; not informative
        benchmark::RegisterBenchmark((std::string("matmul/") + isa + "/" + fmt + "/" + s.name).c_str(),
                                     bm_matmul, isa, format, s.m, s.n, s.k)
            ->Arg(1)
            ->Arg(2)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
}

}  // namespace
}  // namespace nibble::kernels

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  nibble::kernels::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
