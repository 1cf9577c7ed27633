// AVX2+FMA body of the FMA peak probe; compiled with -mavx2 -mfma, called only when the CPU has both.
#include <immintrin.h>

#include "plan/probe.h"

namespace nibble::plan::probe::detail {

double fma_loop_avx2(int64_t iters, float* sink) {
  constexpr int kChains = 12;  // enough independent chains to cover FMA latency on two ports
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(0.001f * static_cast<float>(i));
  const __m256 mul = _mm256_set1_ps(0.999999f);
  const __m256 add = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], mul, add);
  }
  __m256 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, acc[i]);
  float lanes[8];
  _mm256_storeu_ps(lanes, sum);
  *sink = lanes[0];
  return static_cast<double>(iters) * kChains * 8 * 2;
}

}  // namespace nibble::plan::probe::detail
