// The kernel table: one function pointer per op (and per weight format for matmul), filled once at
// start-up for the chosen instruction set (CTranslate2 / gemma.cpp style). Kernels only do
// arithmetic: callers check shapes once, and threading is done by the ops in ops.h.
//
// ISA bodies live in their own directories (ref/ today; x86_avx2/, x86_avx512/, arm_neon/ later),
// each exposing only `register_<isa>(KernelTable&)`, which overwrites the entries it speeds up.
// `NIBBLE_ISA=ref|...` forces one ISA for testing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "kernels/weight_format.h"

namespace nibble::kernels {

struct KernelTable {
  std::string isa;  // the ISA whose bodies were registered last ("ref", "avx2", ...)

  // Y[m, n] = sum_k X[m, k] * W[n, k] for all m < num_tokens and n in [n_begin, n_end).
  // X: [num_tokens, K] fp32, row stride K. Y: row stride ldy (>= N). W is dequantized inside the
  // kernel (no dequantized copy of the weights); accumulation in fp32.
  using MatmulFn = void (*)(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin,
                            int64_t n_end, float* y, int64_t ldy);
  MatmulFn matmul[kNumWeightFormats] = {};
  // The same product with activations kept in fp32 even under an ISA that rounds them (see
  // IsaInfo::rounds_activations): for small matrices whose output is a discrete decision, such as
  // a mixture-of-experts router, where a rounding step could flip an expert choice. Filled by
  // make_kernel_table from the last fp32-activation ISA's matmul.
  MatmulFn matmul_exact[kNumWeightFormats] = {};

  // out[K] = row `row` of W, decoded to fp32 (embedding gather, tied embeddings).
  using DecodeRowFn = void (*)(const MatWeight& w, int64_t row, float* out);
  DecodeRowFn decode_row[kNumWeightFormats] = {};

  // Hugging Face LlamaRMSNorm on each of num_rows rows of dim values:
  // y = weight * (x / sqrt(mean(x^2) + eps)), all fp32. x and y may alias.
  void (*rmsnorm)(const float* x, const float* weight, int64_t num_rows, int64_t dim, float eps,
                  float* y) = nullptr;

  // Rotate-half (NeoX) RoPE, in place, on x[num_heads, head_dim] of one token:
  // x1' = x1*cos - x2*sin, x2' = x2*cos + x1*sin, with x1 = x[:half], x2 = x[half:], cos/sin [half].
  void (*rope)(float* x, int64_t num_heads, int64_t head_dim, const float* cos, const float* sin) = nullptr;

  // x[n] = softmax(x[n]) in place, computed with the max subtracted.
  void (*softmax)(float* x, int64_t n) = nullptr;

  // out[n] = silu(gate[n]) * up[n], silu(g) = g / (1 + exp(-g)). out may alias gate or up.
  void (*silu_mul)(const float* gate, const float* up, int64_t n, float* out) = nullptr;

  // sum_i a[i] * b[i]
  float (*dot)(const float* a, const float* b, int64_t n) = nullptr;

  // y[n] += alpha * x[n]
  void (*axpy)(float alpha, const float* x, int64_t n, float* y) = nullptr;

  // Causal attention with an online softmax (no score matrix) for num_queries query vectors
  // [head_dim] that share one KV head (GQA group members and/or consecutive tokens):
  //   out[i] = sum_{j < num_keys[i]} softmax_j(scale * q[i] . k_j) v_j
  // with k_j = k_rows[j] + kv_offset and v_j = v_rows[j] + kv_offset (one pointer per position,
  // so a paged cache can hand in its blocks). Keys are visited in blocks and each block is used by
  // every query before the next, so K/V are read once per call. q and out may not alias.
  void (*attention)(const float* const* q_rows, float* const* out_rows, const int64_t* num_keys,
                    int64_t num_queries, const float* const* k_rows, const float* const* v_rows,
                    int64_t kv_offset, int64_t head_dim, float scale) = nullptr;

  // Probes for `nibble bench`'s roofline, in this ISA's widest registers (not used by models).
  // fma_probe: `iters` rounds of independent fp32 FMA chains; returns the FLOPs it did and
  // leaves a value in *sink so the work cannot be dropped.
  double (*fma_probe)(int64_t iters, float* sink) = nullptr;
  // read_probe: sum of x[0..n), a read-only streaming pass.
  float (*read_probe)(const float* x, int64_t n) = nullptr;
};

// One ISA that can fill (part of) a table.
struct IsaInfo {
  std::string_view name;
  bool (*supported)();                // does this CPU run it?
  void (*register_fn)(KernelTable&);  // overwrites the entries it implements
  // The ISA's matmuls round activations (to BF16, or to int8 per block for 4-bit weights) to use
  // dot-product instructions, as vLLM (BF16 activations) and llama.cpp (Q8 activations) do. The
  // ISAs without it keep activations in fp32 and match the reference to summation order.
  bool rounds_activations;
};

// The ISAs this build knows, slowest first ("ref" first; it fills every entry).
const std::vector<IsaInfo>& known_isas();

// Builds a table: "ref" bodies, then every supported ISA up to and including `isa` (empty = the
// fastest supported; with exact_activations, ISAs that round activations are left out). An unknown or unsupported ISA is an error listing the available ones.
base::Result<KernelTable> make_kernel_table(std::string_view isa, bool exact_activations = false);

// The process-wide table, built once from NIBBLE_ISA (unset = fastest supported). With
// NIBBLE_EXACT=1 and no NIBBLE_ISA, the fastest ISA that keeps activations in fp32 is chosen
// instead (golden tests against fp32 references use it).
base::Result<const KernelTable*> kernel_table();

}  // namespace nibble::kernels
