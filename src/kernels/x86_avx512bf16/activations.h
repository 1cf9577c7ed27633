// Activation rounding shared by gemv.cpp and gemm.cpp. A format's activations are rounded the same
// way on both paths, so a token's result does not depend on which path (or batch) computed it,
// beyond fp32 summation order: the engine's batched and single-request outputs stay identical.
//
//  - BF16 and FP8 weights: activations rounded to BF16, nearest-even (vcvtneps2bf16).
//  - 4-bit weights (NVFP4, MXFP4): activations quantized to int8 per group of kActGroup = 32
//    consecutive values along K (llama.cpp's Q8_0 rule): amax = max |x| over the group,
//    inv = 127.0f / amax (fp32), q = nearest-even(x * inv) in [-127, 127], scale = amax / 127.0f;
//    an all-zero group has q = 0 and scale = 0. A partial last group is padded with zeros.
//    x ≈ q * scale, and one weight block (16 or 32 values) always lies inside one group.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace nibble::kernels::avx512bf16 {

inline constexpr int64_t kActGroup = 32;

inline int64_t act_groups(int64_t num_cols) {
  return (num_cols + kActGroup - 1) / kActGroup;
}

// q[act_groups(K) * 32] (zero padded), scales[act_groups(K)].
inline void quantize_act_q8(const float* x, int64_t num_cols, int8_t* q, float* scales) {
  const int64_t num_groups = act_groups(num_cols);
  for (int64_t g = 0; g < num_groups; ++g) {
    const int64_t k0 = g * kActGroup;
    const int64_t n = num_cols - k0 < kActGroup ? num_cols - k0 : kActGroup;
    const __mmask16 m0 = static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1u);
    const __mmask16 m1 = static_cast<__mmask16>(n >= 32 ? 0xFFFF : n <= 16 ? 0 : (1u << (n - 16)) - 1u);
    const __m512 v0 = _mm512_maskz_loadu_ps(m0, x + k0);
    const __m512 v1 = _mm512_maskz_loadu_ps(m1, x + k0 + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    if (amax == 0.0f) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + k0), _mm256_setzero_si256());
      scales[g] = 0.0f;
      continue;
    }
    const __m512 inv = _mm512_set1_ps(127.0f / amax);
    // cvtps rounds to nearest-even under the default MXCSR; |x * inv| <= 127 (+ rounding) so the
    // saturating narrow never clips a value that matters.
    const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, inv));
    const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, inv));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + k0), _mm512_cvtsepi32_epi8(i0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + k0 + 16), _mm512_cvtsepi32_epi8(i1));
    scales[g] = amax / 127.0f;
  }
}

// Scalar statement of the same rule (tests compare quantize_act_q8 against it bit for bit).
inline void quantize_act_q8_scalar(const float* x, int64_t num_cols, int8_t* q, float* scales) {
  for (int64_t g = 0; g < act_groups(num_cols); ++g) {
    float amax = 0.0f;
    for (int64_t i = 0; i < kActGroup; ++i) {
      const int64_t k = g * kActGroup + i;
      const float v = k < num_cols ? x[k] : 0.0f;
      amax = (v < 0 ? -v : v) > amax ? (v < 0 ? -v : v) : amax;
    }
    const float inv = amax == 0.0f ? 0.0f : 127.0f / amax;
    for (int64_t i = 0; i < kActGroup; ++i) {
      const int64_t k = g * kActGroup + i;
      const float v = k < num_cols ? x[k] * inv : 0.0f;
      float r = __builtin_nearbyintf(v);
      r = r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r);
      q[k] = static_cast<int8_t>(r);
    }
    scales[g] = amax / 127.0f;
  }
}

// out[K rounded up to 32] = BF16(x) nearest-even, zero padded.
inline void round_act_bf16(const float* x, int64_t num_cols, uint16_t* out) {
  const int64_t padded = (num_cols + 31) & ~int64_t{31};
  for (int64_t k = 0; k < padded; k += 32) {
    const int64_t n = num_cols - k;
    const __mmask16 m0 = static_cast<__mmask16>(n >= 16 ? 0xFFFF : n <= 0 ? 0 : (1u << n) - 1u);
    const __mmask16 m1 = static_cast<__mmask16>(n >= 32 ? 0xFFFF : n <= 16 ? 0 : (1u << (n - 16)) - 1u);
    const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, x + k + 16), _mm512_maskz_loadu_ps(m0, x + k));
    _mm512_storeu_si512(out + k, reinterpret_cast<const __m512i&>(b));
  }
}

}  // namespace nibble::kernels::avx512bf16
