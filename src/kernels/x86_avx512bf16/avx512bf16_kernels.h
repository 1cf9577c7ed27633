// AVX-512 with BF16 dot products (vdpbf16ps), VNNI (vpdpbusd) and VBMI byte permutes (Zen 4,
// Sapphire Rapids and later). Only matmul lives here; every other entry stays the avx512 body.
//
// These matmuls round activations (see IsaInfo::rounds_activations): to BF16 for BF16 and FP8
// weights, to int8 per block for 4-bit weights; accumulation stays fp32 (int32 inside a block).
// Formats a path does not handle fall back to the avx512 body that was registered before.
//
// Files: register.cpp (the table entries and the GEMV/GEMM split), gemv.cpp (few tokens: decode),
// gemm.cpp (many tokens: prefill and batches). Each is its own translation unit with these flags.
#pragma once

#include <cstdint>

#include "kernels/kernel_table.h"

namespace nibble::kernels::avx512bf16 {

void register_avx512bf16(KernelTable& table);

// Token counts below this go to gemv(), the rest to gemm().
inline constexpr int64_t kGemmMinTokens = 4;

// Y[m, n] = sum_k X[m, k] W[n, k] for m < num_tokens, n in [n_begin, n_end) (KernelTable::MatmulFn's
// contract). Each returns false, having written nothing, for a format it has no body for.
bool gemv(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin, int64_t n_end, float* y,
          int64_t ldy);
bool gemm(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin, int64_t n_end, float* y,
          int64_t ldy);

}  // namespace nibble::kernels::avx512bf16
