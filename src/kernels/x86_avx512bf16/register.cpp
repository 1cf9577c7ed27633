#include "kernels/x86_avx512bf16/avx512bf16_kernels.h"

#include <utility>

namespace nibble::kernels::avx512bf16 {
namespace {

// The bodies registered before this ISA (avx512), for the formats the paths here leave alone.
KernelTable::MatmulFn g_fallback[kNumWeightFormats] = {};

template <int kFormat>
void matmul(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin, int64_t n_end, float* y,
            int64_t ldy) {
  const bool done = num_tokens < kGemmMinTokens ? gemv(x, num_tokens, w, n_begin, n_end, y, ldy)
                                                : gemm(x, num_tokens, w, n_begin, n_end, y, ldy);
  if (!done) g_fallback[kFormat](x, num_tokens, w, n_begin, n_end, y, ldy);
}

template <int... kFormats>
void register_all(KernelTable& table, std::integer_sequence<int, kFormats...>) {
  ((g_fallback[kFormats] = table.matmul[kFormats], table.matmul[kFormats] = &matmul<kFormats>), ...);
}

}  // namespace

void register_avx512bf16(KernelTable& table) {
  // F32 and F16 weights keep their exact avx512 bodies: rounding fp32 activations to BF16 would
  // lose more than those formats are chosen to keep.
  const KernelTable::MatmulFn f32 = table.matmul[static_cast<int>(WeightFormat::kF32)];
  const KernelTable::MatmulFn f16 = table.matmul[static_cast<int>(WeightFormat::kF16)];
  register_all(table, std::make_integer_sequence<int, kNumWeightFormats>());
  table.matmul[static_cast<int>(WeightFormat::kF32)] = f32;
  table.matmul[static_cast<int>(WeightFormat::kF16)] = f16;
}

}  // namespace nibble::kernels::avx512bf16
