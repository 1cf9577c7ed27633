// AVX2 bodies (8 fp32 lanes). Compiled with -mavx2 -mfma -mf16c.
//
// Same structure as the AVX-512 bodies (see x86_avx512/avx512_kernels.cpp): GEMV streams four
// weight rows at once for decode; GEMM uses a 6-row x 16-token register tile (12 ymm
// accumulators of 16) over tokens transposed into xt[k][16] and weight rows decoded into
// wp[6][k], both on the stack. Tails (K not a multiple of 8) go through a zero-padded staging
// buffer since AVX2 has no masked 16-bit loads.
//
// No std:: templates over vector or float types here (see the AVX-512 file for why).
#include "kernels/x86_avx2/avx2_kernels.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "formats/block_format.h"

namespace nibble::kernels::avx2 {
namespace {

constexpr int kLanes = 8;
constexpr int kTileRows = 6;
constexpr int kTileTokens = 16;
constexpr int64_t kKc = 512;
constexpr int64_t kGemmMinTokens = 6;

inline int64_t imin(int64_t a, int64_t b) {
  return a < b ? a : b;
}

inline float hsum(__m256 v) {
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
  return _mm_cvtss_f32(s4);
}

inline float hmax(__m256 v) {
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  return _mm_cvtss_f32(m4);
}

// e^x as in the AVX-512 body: degree-6 polynomial on |r| <= ln2/2, 0 below -87.3.
inline __m256 exp_ps(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3f);
  const __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.7f)), lo);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
}

struct LoadF32 {
  static constexpr int kElemBytes = 4;
  static __m256 load(const uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
};
struct LoadBF16 {
  static constexpr int kElemBytes = 2;
  static __m256 load(const uint8_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
};
struct LoadF16 {
  static constexpr int kElemBytes = 2;
  static __m256 load(const uint8_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
};

// The last num_elems (< 8) elements at p, zero-padded to 8 lanes.
template <typename L>
__m256 load_tail(const uint8_t* p, int64_t num_elems) {
  alignas(32) uint8_t staged[kLanes * 4] = {};
  std::memcpy(staged, p, static_cast<size_t>(num_elems * L::kElemBytes));
  return L::load(staged);
}

inline __m256 load_tail_f32(const float* p, int64_t num_elems) {
  return load_tail<LoadF32>(reinterpret_cast<const uint8_t*>(p), num_elems);
}

inline void store_tail(float* p, __m256 v, int64_t num_elems) {
  alignas(32) float staged[kLanes];
  _mm256_store_ps(staged, v);
  std::memcpy(p, staged, static_cast<size_t>(num_elems) * sizeof(float));
}

template <typename L>
void decode_range(const uint8_t* row, int64_t k0, int64_t num_elems, float* out) {
  const uint8_t* p = row + k0 * L::kElemBytes;
  int64_t k = 0;
  for (; k + kLanes <= num_elems; k += kLanes) _mm256_storeu_ps(out + k, L::load(p + k * L::kElemBytes));
  if (k < num_elems) store_tail(out + k, load_tail<L>(p + k * L::kElemBytes, num_elems - k), num_elems - k);
}

template <typename L>
void decode_row(const MatWeight& w, int64_t row, float* out) {
  decode_range<L>(w.data + row * w.row_bytes, 0, w.num_cols, out);
}

template <typename L, int kRows>
void gemv_rows(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n, float* y, int64_t ldy) {
  const int64_t num_cols = w.num_cols;
  const int64_t k_main = num_cols & ~int64_t{kLanes - 1};
  const uint8_t* rows[kRows];
  for (int r = 0; r < kRows; ++r) rows[r] = w.data + (n + r) * w.row_bytes;
  for (int64_t m = 0; m < num_tokens; ++m) {
    const float* xm = x + m * num_cols;
    __m256 acc[kRows];
    for (int r = 0; r < kRows; ++r) acc[r] = _mm256_setzero_ps();
    for (int64_t k = 0; k < k_main; k += kLanes) {
      const __m256 xv = _mm256_loadu_ps(xm + k);
      for (int r = 0; r < kRows; ++r)
        acc[r] = _mm256_fmadd_ps(L::load(rows[r] + k * L::kElemBytes), xv, acc[r]);
    }
    if (k_main < num_cols) {
      const __m256 xv = load_tail_f32(xm + k_main, num_cols - k_main);
      for (int r = 0; r < kRows; ++r) {
        acc[r] =
            _mm256_fmadd_ps(load_tail<L>(rows[r] + k_main * L::kElemBytes, num_cols - k_main), xv, acc[r]);
      }
    }
    for (int r = 0; r < kRows; ++r) y[m * ldy + n + r] = hsum(acc[r]);
  }
}

template <int kVecs>
void micro_tile(const float* xt, const float* wp, int64_t num_k, float* tile) {
  __m256 acc[kTileRows][kVecs];
  for (int r = 0; r < kTileRows; ++r) {
    for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < num_k; ++k) {
    __m256 xv[kVecs];
    for (int v = 0; v < kVecs; ++v) xv[v] = _mm256_load_ps(xt + k * kTileTokens + v * kLanes);
#pragma GCC unroll 6
    for (int r = 0; r < kTileRows; ++r) {
      const __m256 b = _mm256_broadcast_ss(wp + r * kKc + k);
      for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm256_fmadd_ps(xv[v], b, acc[r][v]);
    }
  }
  for (int r = 0; r < kTileRows; ++r) {
    for (int v = 0; v < kVecs; ++v) _mm256_store_ps(tile + r * kTileTokens + v * kLanes, acc[r][v]);
  }
}

template <typename L>
struct PlainDecoder {
  const MatWeight& w;
  void decode(int64_t n, int64_t k0, int64_t num_elems, float* out) const {
    decode_range<L>(w.data + n * w.row_bytes, k0, num_elems, out);
  }
};

template <typename D>
void gemm(const D& decoder, const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin,
          int64_t n_end, float* y, int64_t ldy) {
  const int64_t num_cols = w.num_cols;
  alignas(32) float xt[kKc * kTileTokens];
  alignas(32) float wp[kTileRows * kKc];
  alignas(32) float tile[kTileRows * kTileTokens];
  for (int64_t m0 = 0; m0 < num_tokens; m0 += kTileTokens) {
    const int64_t num_m = imin(kTileTokens, num_tokens - m0);
    for (int64_t k0 = 0; k0 < num_cols; k0 += kKc) {
      const int64_t num_k = imin(kKc, num_cols - k0);
      for (int64_t kk = 0; kk < num_k; ++kk) {
        float* dst = xt + kk * kTileTokens;
        for (int64_t j = 0; j < num_m; ++j) dst[j] = x[(m0 + j) * num_cols + k0 + kk];
        for (int64_t j = num_m; j < kTileTokens; ++j) dst[j] = 0.0f;
      }
      for (int64_t n0 = n_begin; n0 < n_end; n0 += kTileRows) {
        const int64_t num_n = imin(kTileRows, n_end - n0);
        for (int64_t r = 0; r < kTileRows; ++r) {
          if (r < num_n) {
            decoder.decode(n0 + r, k0, num_k, wp + r * kKc);
          } else {
            std::memset(wp + r * kKc, 0, static_cast<size_t>(num_k) * sizeof(float));
          }
        }
        if (num_m > kLanes) {
          micro_tile<2>(xt, wp, num_k, tile);
        } else {
          micro_tile<1>(xt, wp, num_k, tile);
        }
        for (int64_t r = 0; r < num_n; ++r) {
          for (int64_t j = 0; j < num_m; ++j) {
            float& dst = y[(m0 + j) * ldy + n0 + r];
            dst = k0 == 0 ? tile[r * kTileTokens + j] : dst + tile[r * kTileTokens + j];
          }
        }
      }
    }
  }
}

// One weight row at a time with four accumulators: one sequential stream through the weights,
// which the hardware prefetcher follows best (decode, one token).
template <typename L>
void gemv_one_token(const float* x, const MatWeight& w, int64_t n_begin, int64_t n_end, float* y) {
  const int64_t num_cols = w.num_cols;
  const int64_t k_main = num_cols & ~int64_t{4 * kLanes - 1};
  for (int64_t n = n_begin; n < n_end; ++n) {
    const uint8_t* row = w.data + n * w.row_bytes;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
           acc3 = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k < k_main; k += 4 * kLanes) {
      acc0 = _mm256_fmadd_ps(L::load(row + k * L::kElemBytes), _mm256_loadu_ps(x + k), acc0);
      acc1 =
          _mm256_fmadd_ps(L::load(row + (k + kLanes) * L::kElemBytes), _mm256_loadu_ps(x + k + kLanes), acc1);
      acc2 = _mm256_fmadd_ps(L::load(row + (k + 2 * kLanes) * L::kElemBytes),
                             _mm256_loadu_ps(x + k + 2 * kLanes), acc2);
      acc3 = _mm256_fmadd_ps(L::load(row + (k + 3 * kLanes) * L::kElemBytes),
                             _mm256_loadu_ps(x + k + 3 * kLanes), acc3);
    }
    for (; k + kLanes <= num_cols; k += kLanes) {
      acc0 = _mm256_fmadd_ps(L::load(row + k * L::kElemBytes), _mm256_loadu_ps(x + k), acc0);
    }
    if (k < num_cols) {
      acc1 = _mm256_fmadd_ps(load_tail<L>(row + k * L::kElemBytes, num_cols - k),
                             load_tail_f32(x + k, num_cols - k), acc1);
    }
    y[n] = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  }
}

template <typename L>
void matmul(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin, int64_t n_end, float* y,
            int64_t ldy) {
  if (num_tokens == 1) {
    gemv_one_token<L>(x, w, n_begin, n_end, y);
    return;
  }
  if (num_tokens >= kGemmMinTokens) {
    gemm(PlainDecoder<L>{w}, x, num_tokens, w, n_begin, n_end, y, ldy);
    return;
  }
  int64_t n = n_begin;
  for (; n + 4 <= n_end; n += 4) gemv_rows<L, 4>(x, num_tokens, w, n, y, ldy);
  for (; n < n_end; ++n) gemv_rows<L, 1>(x, num_tokens, w, n, y, ldy);
}

// Block-quantized formats, as in the AVX-512 body: element codes through a table of the codec's
// values (4-bit: two 8-entry vpermps halves picked by bit 3; 8-bit: a gather), times the block's
// multiplier, bit-identical to formats::dequantize_row. 8 columns at a time; every block size is
// a multiple of 8.
class QuantDecoder {
 public:
  explicit QuantDecoder(const MatWeight& w) : w_(w), format_(*block_format_of(w.format)) {
    const int num_codes = format_.element->bits == 4 ? 16 : 256;
    for (int c = 0; c < num_codes; ++c) elem_lut_[c] = format_.element->decode(static_cast<uint8_t>(c));
    four_bit_ = format_.element->bits == 4;
    tile_cols_ = format_.block_cols == formats::kWholeDim ? w.num_cols : format_.block_cols;
    scale_bytes_ = format_.scale->bytes;
    if (scale_bytes_ == 1) {
      for (int c = 0; c < 256; ++c) {
        scale_lut_[c] = format_.multiplier(format_.scale->value(static_cast<uint32_t>(c)), w.tensor_scale);
      }
    }
    lut_low_ = _mm256_load_ps(elem_lut_);
    lut_high_ = _mm256_load_ps(elem_lut_ + 8);
  }

  void decode(int64_t n, int64_t k0, int64_t num_elems, float* out) const {
    const uint8_t* row = w_.data + n * w_.row_bytes;
    const uint8_t* scales = w_.block_scales + (n / w_.scale_tile_rows) * w_.scale_row_bytes;
    const int64_t k_end = k0 + num_elems;
    // The block index advances by comparison, not a division per chunk.
    int64_t block = k0 / tile_cols_;
    int64_t block_end = (block + 1) * tile_cols_;
    __m256 mult = _mm256_set1_ps(multiplier(scales, block));
    for (int64_t k = k0; k < k_end; k += kLanes) {
      if (k >= block_end) {
        ++block;
        block_end += tile_cols_;
        mult = _mm256_set1_ps(multiplier(scales, block));
      }
      const int64_t count = imin(kLanes, k_end - k);
      __m256 v;
      if (four_bit_) {
        uint32_t packed = 0;
        std::memcpy(&packed, row + k / 2, static_cast<size_t>((count + 1) / 2));
        const __m128i bytes = _mm_cvtsi32_si128(static_cast<int>(packed));
        const __m128i low = _mm_and_si128(bytes, _mm_set1_epi8(0x0F));
        const __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), _mm_set1_epi8(0x0F));
        const __m256i idx = _mm256_cvtepu8_epi32(_mm_unpacklo_epi8(low, high));
        const __m256 pick_high = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));
        v = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lut_low_, idx),
                             _mm256_permutevar8x32_ps(lut_high_, idx), pick_high);
      } else {
        uint64_t packed = 0;
        std::memcpy(&packed, row + k, static_cast<size_t>(count));
        const __m256i idx = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(packed)));
        v = _mm256_i32gather_ps(elem_lut_, idx, 4);
      }
      v = _mm256_mul_ps(v, mult);
      if (count == kLanes) {
        _mm256_storeu_ps(out + (k - k0), v);
      } else {
        store_tail(out + (k - k0), v, count);
      }
    }
  }

 private:
  float multiplier(const uint8_t* scales, int64_t block_idx) const {
    if (scale_bytes_ == 1) return scale_lut_[scales[block_idx]];
    const uint32_t code = format_.scale->load(scales + block_idx * scale_bytes_);
    return format_.multiplier(format_.scale->value(code), w_.tensor_scale);
  }

  const MatWeight& w_;
  const formats::BlockFormat& format_;
  alignas(32) float elem_lut_[256] = {};
  float scale_lut_[256] = {};
  __m256 lut_low_;
  __m256 lut_high_;
  bool four_bit_ = false;
  int64_t tile_cols_ = 1;
  int scale_bytes_ = 1;
};

float dot(const float* a, const float* b, int64_t n);

void matmul_quant(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin, int64_t n_end,
                  float* y, int64_t ldy) {
  const QuantDecoder decoder(w);
  if (num_tokens >= kGemmMinTokens) {
    gemm(decoder, x, num_tokens, w, n_begin, n_end, y, ldy);
    return;
  }
  const int64_t num_cols = w.num_cols;
  alignas(32) float chunk[kKc];
  float acc[kGemmMinTokens];
  for (int64_t n = n_begin; n < n_end; ++n) {
    for (int64_t m = 0; m < num_tokens; ++m) acc[m] = 0.0f;
    for (int64_t k0 = 0; k0 < num_cols; k0 += kKc) {
      const int64_t num_k = imin(kKc, num_cols - k0);
      decoder.decode(n, k0, num_k, chunk);
      for (int64_t m = 0; m < num_tokens; ++m) acc[m] += dot(x + m * num_cols + k0, chunk, num_k);
    }
    for (int64_t m = 0; m < num_tokens; ++m) y[m * ldy + n] = acc[m];
  }
}

void decode_row_quant(const MatWeight& w, int64_t row, float* out) {
  QuantDecoder(w).decode(row, 0, w.num_cols, out);
}

float dot(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + kLanes), _mm256_loadu_ps(b + i + kLanes), acc1);
  }
  for (; i + kLanes <= n; i += kLanes)
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  if (i < n) acc1 = _mm256_fmadd_ps(load_tail_f32(a + i, n - i), load_tail_f32(b + i, n - i), acc1);
  return hsum(_mm256_add_ps(acc0, acc1));
}

void axpy(float alpha, const float* x, int64_t n, float* y) {
  const __m256 a = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] = __builtin_fmaf(alpha, x[i], y[i]);
}

void rmsnorm(const float* x, const float* weight, int64_t num_rows, int64_t dim, float eps, float* y) {
  for (int64_t r = 0; r < num_rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    const float sum_sq = dot(xr, xr, dim);
    const float inv = 1.0f / __builtin_sqrtf(sum_sq / static_cast<float>(dim) + eps);
    const __m256 inv_rms = _mm256_set1_ps(inv);
    int64_t i = 0;
    for (; i + kLanes <= dim; i += kLanes) {
      const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(xr + i), inv_rms);
      _mm256_storeu_ps(yr + i, _mm256_mul_ps(_mm256_loadu_ps(weight + i), v));
    }
    for (; i < dim; ++i) yr[i] = weight[i] * (xr[i] * inv);
  }
}

void rope(float* x, int64_t num_heads, int64_t head_dim, const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < num_heads; ++h) {
    float* x1p = x + h * head_dim;
    float* x2p = x1p + half;
    int64_t i = 0;
    for (; i + kLanes <= half; i += kLanes) {
      const __m256 x1 = _mm256_loadu_ps(x1p + i);
      const __m256 x2 = _mm256_loadu_ps(x2p + i);
      const __m256 c = _mm256_loadu_ps(cos + i);
      const __m256 s = _mm256_loadu_ps(sin + i);
      _mm256_storeu_ps(x1p + i, _mm256_fmsub_ps(x1, c, _mm256_mul_ps(x2, s)));
      _mm256_storeu_ps(x2p + i, _mm256_fmadd_ps(x2, c, _mm256_mul_ps(x1, s)));
    }
    for (; i < half; ++i) {
      const float x1 = x1p[i];
      const float x2 = x2p[i];
      x1p[i] = __builtin_fmaf(x1, cos[i], -(x2 * sin[i]));
      x2p[i] = __builtin_fmaf(x2, cos[i], x1 * sin[i]);
    }
  }
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
  float max_val = hmax(vmax);
  for (; i < n; ++i) max_val = x[i] > max_val ? x[i] : max_val;
  const __m256 vmax_all = _mm256_set1_ps(max_val);
  __m256 vsum = _mm256_setzero_ps();
  for (i = 0; i + kLanes <= n; i += kLanes) {
    const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax_all));
    _mm256_storeu_ps(x + i, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  if (i < n) {
    // Padding lanes hold -inf after the subtraction, so they add exp(-inf) = 0.
    alignas(32) float staged[kLanes];
    for (int l = 0; l < kLanes; ++l) staged[l] = i + l < n ? x[i + l] - max_val : -INFINITY;
    const __m256 e = exp_ps(_mm256_load_ps(staged));
    store_tail(x + i, e, n - i);
    vsum = _mm256_add_ps(vsum, e);
  }
  const __m256 inv_sum = _mm256_set1_ps(1.0f / hsum(vsum));
  for (i = 0; i + kLanes <= n; i += kLanes)
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv_sum));
  const float inv = 1.0f / hsum(vsum);
  for (; i < n; ++i) x[i] *= inv;
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), g));
    _mm256_storeu_ps(out + i,
                     _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
  }
  if (i < n) {
    const __m256 g = load_tail_f32(gate + i, n - i);
    const __m256 e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), g));
    store_tail(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), load_tail_f32(up + i, n - i)),
               n - i);
  }
}

// Online-softmax attention (see KernelTable::attention). Keys go in blocks of kKeyBlock: each
// query scores the block (one dot product per key), rescales its running output once by
// exp(m_old - m_new), and adds the block's values weighted by exp(s - m_new) computed as one
// vector. The block's K/V rows stay in L1 while every query of the call uses them.
constexpr int64_t kKeyBlock = kLanes;
constexpr int64_t kMaxQueries = 64;

void attention_chunk(const float* const* q_rows, float* const* out_rows, const int64_t* num_keys,
                     int64_t num_queries, const float* const* k_rows, const float* const* v_rows,
                     int64_t kv_offset, int64_t head_dim, float scale) {
  float m[kMaxQueries];
  float l[kMaxQueries];
  int64_t max_keys = 0;
  for (int64_t i = 0; i < num_queries; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
    std::memset(out_rows[i], 0, static_cast<size_t>(head_dim) * sizeof(float));
    max_keys = num_keys[i] > max_keys ? num_keys[i] : max_keys;
  }
  alignas(64) float scores[kKeyBlock];
  for (int64_t j0 = 0; j0 < max_keys; j0 += kKeyBlock) {
    for (int64_t i = 0; i < num_queries; ++i) {
      const int64_t nk = imin(kKeyBlock, num_keys[i] - j0);
      if (nk <= 0) continue;
      for (int64_t jj = 0; jj < nk; ++jj)
        scores[jj] = dot(q_rows[i], k_rows[j0 + jj] + kv_offset, head_dim) * scale;

      for (int64_t jj = nk; jj < kKeyBlock; ++jj) scores[jj] = -INFINITY;
      const __m256 sv = _mm256_load_ps(scores);
      const float block_max = hmax(sv);
      const float m_new = block_max > m[i] ? block_max : m[i];
      const float corr = m[i] == -INFINITY ? 0.0f : __builtin_expf(m[i] - m_new);
      const __m256 p = exp_ps(_mm256_sub_ps(sv, _mm256_set1_ps(m_new)));
      _mm256_store_ps(scores, p);
      l[i] = l[i] * corr + hsum(p);
      m[i] = m_new;
      const __m256 corr_v = _mm256_set1_ps(corr);
      float* out = out_rows[i];
      int64_t d = 0;
      for (; d + kLanes <= head_dim; d += kLanes) {
        __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(out + d), corr_v);
        for (int64_t jj = 0; jj < nk; ++jj) {
          acc = _mm256_fmadd_ps(_mm256_set1_ps(scores[jj]), _mm256_loadu_ps(v_rows[j0 + jj] + kv_offset + d),
                                acc);
        }
        _mm256_storeu_ps(out + d, acc);
      }
      for (; d < head_dim; ++d) {
        float a = out[d] * corr;
        for (int64_t jj = 0; jj < nk; ++jj) a += scores[jj] * v_rows[j0 + jj][kv_offset + d];
        out[d] = a;
      }
    }
  }
  for (int64_t i = 0; i < num_queries; ++i) {
    const __m256 inv_l = _mm256_set1_ps(l[i] > 0.0f ? 1.0f / l[i] : 0.0f);
    float* out = out_rows[i];
    int64_t d = 0;
    for (; d + kLanes <= head_dim; d += kLanes) {
      _mm256_storeu_ps(out + d, _mm256_mul_ps(_mm256_loadu_ps(out + d), inv_l));
    }
    for (; d < head_dim; ++d) out[d] *= 1.0f / l[i];
  }
}

void attention(const float* const* q_rows, float* const* out_rows, const int64_t* num_keys,
               int64_t num_queries, const float* const* k_rows, const float* const* v_rows, int64_t kv_offset,
               int64_t head_dim, float scale) {
  for (int64_t i0 = 0; i0 < num_queries; i0 += kMaxQueries) {
    attention_chunk(q_rows + i0, out_rows + i0, num_keys + i0, imin(kMaxQueries, num_queries - i0), k_rows,
                    v_rows, kv_offset, head_dim, scale);
  }
}

// Roofline probes: 12 independent FMA chains cover the FMA latency on both pipes; the read probe
// keeps 4 accumulators so the adds never limit a streaming read.
double fma_probe(int64_t iters, float* sink) {
  constexpr int kChains = 12;
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(0.001f * static_cast<float>(i));
  const __m256 mul = _mm256_set1_ps(0.999999f);
  const __m256 add = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], mul, add);
  }
  for (int i = 1; i < kChains; ++i) acc[0] = _mm256_add_ps(acc[0], acc[i]);
  *sink = hsum(acc[0]);
  return static_cast<double>(iters) * kChains * kLanes * 2;
}

float read_probe(const float* x, int64_t n) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    for (int v = 0; v < 4; ++v) acc[v] = _mm256_add_ps(acc[v], _mm256_loadu_ps(x + i + v * kLanes));
  }
  float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += x[i];
  return sum;
}

}  // namespace

void register_avx2(KernelTable& table) {
  table.matmul[static_cast<int>(WeightFormat::kF32)] = &matmul<LoadF32>;
  table.matmul[static_cast<int>(WeightFormat::kBF16)] = &matmul<LoadBF16>;
  table.matmul[static_cast<int>(WeightFormat::kF16)] = &matmul<LoadF16>;
  table.decode_row[static_cast<int>(WeightFormat::kF32)] = &decode_row<LoadF32>;
  table.decode_row[static_cast<int>(WeightFormat::kBF16)] = &decode_row<LoadBF16>;
  table.decode_row[static_cast<int>(WeightFormat::kF16)] = &decode_row<LoadF16>;
  for (int i = 0; i < kNumWeightFormats; ++i) {
    if (block_format_of(static_cast<WeightFormat>(i)) == nullptr) continue;
    table.matmul[i] = &matmul_quant;
    table.decode_row[i] = &decode_row_quant;
  }
  table.rmsnorm = &rmsnorm;
  table.rope = &rope;
  table.softmax = &softmax;
  table.silu_mul = &silu_mul;
  table.dot = &dot;
  table.axpy = &axpy;
  table.attention = &attention;
  table.fma_probe = &fma_probe;
  table.read_probe = &read_probe;
}

}  // namespace nibble::kernels::avx2
