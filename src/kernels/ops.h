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

}  // namespace nibble::kernels
