// Prefill- and batch-shaped matmul (num_tokens >= kGemmMinTokens).
#include <immintrin.h>

#include "kernels/x86_avx512bf16/activations.h"
#include "kernels/x86_avx512bf16/avx512bf16_kernels.h"

namespace nibble::kernels::avx512bf16 {

bool gemm(const float* /*x*/, int64_t /*num_tokens*/, const MatWeight& /*w*/, int64_t /*n_begin*/,
          int64_t /*n_end*/, float* /*y*/, int64_t /*ldy*/) {
  return false;
}

}  // namespace nibble::kernels::avx512bf16
