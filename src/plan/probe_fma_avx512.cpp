// AVX-512F body of the FMA peak probe; compiled with -mavx512f, called only when the CPU has it.
#include <immintrin.h>

#include "plan/probe.h"

namespace nibble::plan::probe::detail {

double fma_loop_avx512(int64_t iters, float* sink) {
  constexpr int kChains = 12;
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  const __m512 mul = _mm512_set1_ps(0.999999f);
  const __m512 add = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], mul, add);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm512_add_ps(sum, acc[i]);
  float lanes[16];
  _mm512_storeu_ps(lanes, sum);  // not _mm512_reduce_add_ps: g++ 12 warns inside it
  *sink = lanes[0] + lanes[15];
  return static_cast<double>(iters) * kChains * 16 * 2;
}

}  // namespace nibble::plan::probe::detail
