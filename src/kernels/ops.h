// Threaded entry points over the kernel table. Arguments are checked by the caller (the model
// checks shapes once at load); these only split work across the pool.
#pragma once

#include <cstdint>

#include "base/thread_pool.h"
#include "kernels/kernel_table.h"

namespace nibble::kernels {

// Y[num_tokens, N] = X[num_tokens, K] · W[N, K]ᵀ, the N outputs split across the pool's threads.
void matmul(const KernelTable& table, base::ThreadPool& pool, const float* x, int64_t num_tokens,
            const MatWeight& w, float* y);

// matmul() through the table's fp32-activation bodies (KernelTable::matmul_exact).
void matmul_exact(const KernelTable& table, base::ThreadPool& pool, const float* x, int64_t num_tokens,
                  const MatWeight& w, float* y);

// Calibration hook (nibble quantize --calib-data): when set, matmul() calls it with each input
// X[num_tokens, K] before multiplying, on the calling thread. Process-wide; set it only while one
// model runs single-request calibration, and clear it (nullptr) afterwards.
using MatmulObserver = void (*)(void* ctx, const float* x, int64_t num_tokens, const MatWeight& w);
void set_matmul_observer(MatmulObserver fn, void* ctx);

}  // namespace nibble::kernels
