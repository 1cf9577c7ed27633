// AVX-512 bodies (16 fp32 lanes). Compiled with -mavx512f -mavx512bw -mavx512vl -mfma -mf16c.
//
// Matmul has two shapes:
//  - GEMV (few tokens, decode): four weight rows streamed at once, each element decoded to fp32 in
//    registers and multiplied with every token's row; memory-bound, so the point is one pass over
//    the weights with no copy.
//  - GEMM (prefill, batches): a 12-row x 32-token register tile (24 zmm accumulators). Per block of
//    K the tokens are transposed into xt[k][32] and 12 weight rows decoded into wp[12][k] (both on
//    the stack, L1/L2 resident; the weights are never dequantized as a whole). Each k then costs 2
//    vector loads, 12 broadcasts and 24 FMAs, which keeps both FMA pipes busy.
//
// No std:: templates over vector or float types here: inline template instances are shared across
// translation units, and one compiled with these flags must never stand in for the generic one.
#include "kernels/x86_avx512/avx512_kernels.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "formats/block_format.h"

namespace nibble::kernels::avx512 {
namespace {

constexpr int kLanes = 16;
constexpr int kTileRows = 12;          // weight rows per GEMM micro-tile
constexpr int kTileTokens = 32;        // tokens per GEMM micro-tile (two zmm)
constexpr int64_t kKc = 512;           // K block of the GEMM (xt 64 KiB + wp 24 KiB on the stack)
constexpr int64_t kGemmMinTokens = 6;  // below this, GEMV re-reading rows from L1 is cheaper

inline int64_t imin(int64_t a, int64_t b) {
  return a < b ? a : b;
}

inline __mmask16 tail_mask(int64_t n) {
  return static_cast<__mmask16>((1u << n) - 1u);
}

// Through memory: g++ 12's 512->256 extract/cast intrinsics trip -Wuninitialized (GCC bug 105593).
inline __m256 halves_sum(__m512 v) {
  alignas(64) float lanes[kLanes];
  _mm512_store_ps(lanes, v);
  return _mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8));
}

inline float hsum(__m512 v) {
  const __m256 s8 = halves_sum(v);
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
  return _mm_cvtss_f32(s4);
}

inline float hmax(__m512 v) {
  alignas(64) float lanes[kLanes];
  _mm512_store_ps(lanes, v);
  __m256 m8 = _mm256_max_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  return _mm_cvtss_f32(m4);
}

// e^x to about 2 ulp: x = n ln2 + r, |r| <= ln2/2, e^r by its degree-6 Taylor polynomial, then
// scaled by 2^n through the exponent bits. Below -87.3 (the fp32 normal range) the result is 0.
inline __m512 exp_ps(__m512 x) {
  const __m512 hi = _mm512_set1_ps(88.7f);
  const __m512 lo = _mm512_set1_ps(-87.3f);
  const __mmask16 underflow = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  x = _mm512_max_ps(_mm512_min_ps(x, hi), lo);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  const __m512 result = _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~underflow), result);
}

// Element loaders: 16 consecutive elements of a row in the stored format -> 16 fp32.
struct LoadF32 {
  static constexpr int kElemBytes = 4;
  static __m512 load(const uint8_t* p) { return _mm512_loadu_ps(p); }
  static __m512 load_masked(const uint8_t* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};
struct LoadBF16 {
  static constexpr int kElemBytes = 2;
  static __m512 widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static __m512 load(const uint8_t* p) {
    return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static __m512 load_masked(const uint8_t* p, __mmask16 m) { return widen(_mm256_maskz_loadu_epi16(m, p)); }
};
struct LoadF16 {
  static constexpr int kElemBytes = 2;
  static __m512 load(const uint8_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static __m512 load_masked(const uint8_t* p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
  }
};

// out[0, num_elems) = row elements [k0, k0 + num_elems) as fp32.
template <typename L>
void decode_range(const uint8_t* row, int64_t k0, int64_t num_elems, float* out) {
  const uint8_t* p = row + k0 * L::kElemBytes;
  int64_t k = 0;
  for (; k + kLanes <= num_elems; k += kLanes) _mm512_storeu_ps(out + k, L::load(p + k * L::kElemBytes));
  if (k < num_elems) {
    const __mmask16 m = tail_mask(num_elems - k);
    _mm512_mask_storeu_ps(out + k, m, L::load_masked(p + k * L::kElemBytes, m));
  }
}

template <typename L>
void decode_row(const MatWeight& w, int64_t row, float* out) {
  decode_range<L>(w.data + row * w.row_bytes, 0, w.num_cols, out);
}

// y[m, n..n+kRows) for every token m, reading kRows weight rows once (they stay in L1 across m).
template <typename L, int kRows>
void gemv_rows(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n, float* y, int64_t ldy) {
  const int64_t num_cols = w.num_cols;
  const int64_t k_main = num_cols & ~int64_t{kLanes - 1};
  const __mmask16 tail = tail_mask(num_cols - k_main);
  const uint8_t* rows[kRows];
  for (int r = 0; r < kRows; ++r) rows[r] = w.data + (n + r) * w.row_bytes;
  for (int64_t m = 0; m < num_tokens; ++m) {
    const float* xm = x + m * num_cols;
    __m512 acc[kRows];
    for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t k = 0; k < k_main; k += kLanes) {
      const __m512 xv = _mm512_loadu_ps(xm + k);
      for (int r = 0; r < kRows; ++r)
        acc[r] = _mm512_fmadd_ps(L::load(rows[r] + k * L::kElemBytes), xv, acc[r]);
    }
    if (tail != 0) {
      const __m512 xv = _mm512_maskz_loadu_ps(tail, xm + k_main);
      for (int r = 0; r < kRows; ++r) {
        acc[r] = _mm512_fmadd_ps(L::load_masked(rows[r] + k_main * L::kElemBytes, tail), xv, acc[r]);
      }
    }
    for (int r = 0; r < kRows; ++r) y[m * ldy + n + r] = hsum(acc[r]);
  }
}

// tile[r][j] = sum_k wp[r][k] * xt[k][j] for r < kTileRows, j < 16 * kVecs.
template <int kVecs>
void micro_tile(const float* xt, const float* wp, int64_t num_k, float* tile) {
  __m512 acc[kTileRows][kVecs];
  for (int r = 0; r < kTileRows; ++r) {
    for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < num_k; ++k) {
    __m512 xv[kVecs];
    for (int v = 0; v < kVecs; ++v) xv[v] = _mm512_load_ps(xt + k * kTileTokens + v * kLanes);
#pragma GCC unroll 12
    for (int r = 0; r < kTileRows; ++r) {
      const __m512 b = _mm512_set1_ps(wp[r * kKc + k]);
      for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm512_fmadd_ps(xv[v], b, acc[r][v]);
    }
  }
  for (int r = 0; r < kTileRows; ++r) {
    for (int v = 0; v < kVecs; ++v) _mm512_store_ps(tile + r * kTileTokens + v * kLanes, acc[r][v]);
  }
}

// Decodes row n, columns [k0, k0 + num_elems) of a plain-format weight.
template <typename L>
struct PlainDecoder {
  const MatWeight& w;
  void decode(int64_t n, int64_t k0, int64_t num_elems, float* out) const {
    decode_range<L>(w.data + n * w.row_bytes, k0, num_elems, out);
  }
};

// k0 is always a multiple of kKc, so block-quantized decoders see whole 16-column chunks.
template <typename D>
void gemm(const D& decoder, const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin,
          int64_t n_end, float* y, int64_t ldy) {
  const int64_t num_cols = w.num_cols;
  alignas(64) float xt[kKc * kTileTokens];  // [k][token] of one K block
  alignas(64) float wp[kTileRows * kKc];    // [row][k] of one K block
  alignas(64) float tile[kTileRows * kTileTokens];
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
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(),
           acc3 = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k < k_main; k += 4 * kLanes) {
      acc0 = _mm512_fmadd_ps(L::load(row + k * L::kElemBytes), _mm512_loadu_ps(x + k), acc0);
      acc1 =
          _mm512_fmadd_ps(L::load(row + (k + kLanes) * L::kElemBytes), _mm512_loadu_ps(x + k + kLanes), acc1);
      acc2 = _mm512_fmadd_ps(L::load(row + (k + 2 * kLanes) * L::kElemBytes),
                             _mm512_loadu_ps(x + k + 2 * kLanes), acc2);
      acc3 = _mm512_fmadd_ps(L::load(row + (k + 3 * kLanes) * L::kElemBytes),
                             _mm512_loadu_ps(x + k + 3 * kLanes), acc3);
    }
    for (; k < num_cols; k += kLanes) {
      const __mmask16 m = tail_mask(imin(kLanes, num_cols - k));
      acc0 =
          _mm512_fmadd_ps(L::load_masked(row + k * L::kElemBytes, m), _mm512_maskz_loadu_ps(m, x + k), acc0);
    }
    y[n] = hsum(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
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

// Block-quantized formats (NVFP4, MXFP4, FP8 with tensor/channel/128x128 scales), read from
// their formats row as data: element codes go through a table of the element codec's values
// (16 entries in one register for 4-bit codes, vpermps; 256 for 8-bit codes, a gather), times
// the block's multiplier(scale, tensor_scale), exactly as formats::dequantize_row computes it, so
// the decoded weights are bit-identical to the reference. Rows are decoded 16 columns at a time;
// every block size (16, 32, 128, whole row) is a multiple of 16, so a chunk has one scale.
// The scale codec's value of every 1-byte code, per weight format, computed once (value() can be
// slow, e.g. ldexp): the decoder only multiplies these with the tensor scale per call.
struct ScaleValues {
  float of[kNumWeightFormats][256] = {};
  ScaleValues() {
    for (int f = 0; f < kNumWeightFormats; ++f) {
      const formats::BlockFormat* bf = block_format_of(static_cast<WeightFormat>(f));
      if (bf == nullptr || bf->scale->bytes != 1) continue;
      for (int c = 0; c < 256; ++c) of[f][c] = bf->scale->value(static_cast<uint32_t>(c));
    }
  }
};

const float* scale_values(WeightFormat format) {
  static const ScaleValues values;
  return values.of[static_cast<int>(format)];
}

class QuantDecoder {
 public:
  explicit QuantDecoder(const MatWeight& w) : w_(w), format_(*block_format_of(w.format)) {
    const int num_codes = format_.element->bits == 4 ? 16 : 256;
    for (int c = 0; c < num_codes; ++c) elem_lut_[c] = format_.element->decode(static_cast<uint8_t>(c));
    four_bit_ = format_.element->bits == 4;
    tile_cols_ = format_.block_cols == formats::kWholeDim ? w.num_cols : format_.block_cols;
    scale_bytes_ = format_.scale->bytes;
    if (scale_bytes_ == 1) {
      const float* values = scale_values(w.format);
      for (int c = 0; c < 256; ++c) scale_lut_[c] = format_.multiplier(values[c], w.tensor_scale);
    }
    lut16_ = _mm512_load_ps(elem_lut_);
  }

  // sum_k W[n, k] * x[k] without storing the decoded row (decode of one token): each decoded
  // weight is rounded exactly as decode() writes it, then multiplied into the sum.
  float dot_row(int64_t n, const float* x) const {
    const uint8_t* row = w_.data + n * w_.row_bytes;
    const uint8_t* scales = w_.block_scales + (n / w_.scale_tile_rows) * w_.scale_row_bytes;
    const int64_t k_end = w_.num_cols;
    int64_t block = 0;
    int64_t block_end = tile_cols_;
    __m512 mult = _mm512_set1_ps(multiplier(scales, 0));
    const __m128i nibble_mask = _mm_set1_epi8(0x0F);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + kLanes <= k_end; k += kLanes) {
      if (k >= block_end) {
        ++block;
        block_end += tile_cols_;
        mult = _mm512_set1_ps(multiplier(scales, block));
      }
      __m512 v;
      if (four_bit_) {
        const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + k / 2));
        const __m128i low = _mm_and_si128(bytes, nibble_mask);
        const __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), nibble_mask);
        v = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(low, high)), lut16_);
      } else {
        v = _mm512_i32gather_ps(
            _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k))), elem_lut_, 4);
      }
      const __m512 xv = _mm512_loadu_ps(x + k);
      if ((k / kLanes) % 2 == 0) {
        acc0 = _mm512_fmadd_ps(_mm512_mul_ps(v, mult), xv, acc0);
      } else {
        acc1 = _mm512_fmadd_ps(_mm512_mul_ps(v, mult), xv, acc1);
      }
    }
    float sum = hsum(_mm512_add_ps(acc0, acc1));
    if (k < k_end) {
      alignas(64) float tail[kLanes];
      decode(n, k, k_end - k, tail);
      for (int64_t i = 0; i < k_end - k; ++i) sum += tail[i] * x[k + i];
    }
    return sum;
  }

  void decode(int64_t n, int64_t k0, int64_t num_elems, float* out) const {
    const uint8_t* row = w_.data + n * w_.row_bytes;
    const uint8_t* scales = w_.block_scales + (n / w_.scale_tile_rows) * w_.scale_row_bytes;
    const int64_t k_end = k0 + num_elems;
    // The block index advances by comparison, not a division per chunk.
    int64_t block = k0 / tile_cols_;
    int64_t block_end = (block + 1) * tile_cols_;
    __m512 mult = _mm512_set1_ps(multiplier(scales, block));
    const __m128i nibble_mask = _mm_set1_epi8(0x0F);
    for (int64_t k = k0; k < k_end; k += kLanes) {
      if (k >= block_end) {
        ++block;
        block_end += tile_cols_;
        mult = _mm512_set1_ps(multiplier(scales, block));
      }
      const int64_t count = imin(kLanes, k_end - k);
      __m512 v;
      if (four_bit_) {
        // Element 2j is the low nibble of byte j: interleave low and high nibbles in order.
        const __m128i bytes =
            count == kLanes
                ? _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + k / 2))
                : _mm_maskz_loadu_epi8(static_cast<__mmask16>((1u << ((count + 1) / 2)) - 1u), row + k / 2);
        const __m128i low = _mm_and_si128(bytes, nibble_mask);
        const __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), nibble_mask);
        v = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(low, high)), lut16_);
      } else {
        const __m128i bytes = count == kLanes ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k))
                                              : _mm_maskz_loadu_epi8(tail_mask(count), row + k);
        v = _mm512_i32gather_ps(_mm512_cvtepu8_epi32(bytes), elem_lut_, 4);
      }
      if (count == kLanes) {
        _mm512_storeu_ps(out + (k - k0), _mm512_mul_ps(v, mult));
      } else {
        _mm512_mask_storeu_ps(out + (k - k0), tail_mask(count), _mm512_mul_ps(v, mult));
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
  alignas(64) float elem_lut_[256] = {};
  float scale_lut_[256] = {};
  __m512 lut16_;
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
  if (num_tokens == 1) {
    for (int64_t n = n_begin; n < n_end; ++n) y[n] = decoder.dot_row(n, x);
    return;
  }
  // GEMV: decode a row chunk into L1 once, use it for every token.
  const int64_t num_cols = w.num_cols;
  alignas(64) float chunk[kKc];
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
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + kLanes), _mm512_loadu_ps(b + i + kLanes), acc1);
  }
  for (; i < n; i += kLanes) {
    const __mmask16 m = tail_mask(imin(kLanes, n - i));
    acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc0);
  }
  return hsum(_mm512_add_ps(acc0, acc1));
}

void axpy(float alpha, const float* x, int64_t n, float* y) {
  const __m512 a = _mm512_set1_ps(alpha);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  }
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(
        y + i, m, _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

void rmsnorm(const float* x, const float* weight, int64_t num_rows, int64_t dim, float eps, float* y) {
  for (int64_t r = 0; r < num_rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    const float sum_sq = dot(xr, xr, dim);
    const __m512 inv_rms = _mm512_set1_ps(1.0f / __builtin_sqrtf(sum_sq / static_cast<float>(dim) + eps));
    for (int64_t i = 0; i < dim; i += kLanes) {
      const __mmask16 m = tail_mask(imin(kLanes, dim - i));
      const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + i), inv_rms);
      _mm512_mask_storeu_ps(yr + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, weight + i), v));
    }
  }
}

void rope(float* x, int64_t num_heads, int64_t head_dim, const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < num_heads; ++h) {
    float* x1p = x + h * head_dim;
    float* x2p = x1p + half;
    for (int64_t i = 0; i < half; i += kLanes) {
      const __mmask16 m = tail_mask(imin(kLanes, half - i));
      const __m512 x1 = _mm512_maskz_loadu_ps(m, x1p + i);
      const __m512 x2 = _mm512_maskz_loadu_ps(m, x2p + i);
      const __m512 c = _mm512_maskz_loadu_ps(m, cos + i);
      const __m512 s = _mm512_maskz_loadu_ps(m, sin + i);
      _mm512_mask_storeu_ps(x1p + i, m, _mm512_fmsub_ps(x1, c, _mm512_mul_ps(x2, s)));
      _mm512_mask_storeu_ps(x2p + i, m, _mm512_fmadd_ps(x2, c, _mm512_mul_ps(x1, s)));
    }
  }
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = tail_mask(imin(kLanes, n - i));
    vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_maskz_loadu_ps(m, x + i));
  }
  const __m512 max_val = _mm512_set1_ps(hmax(vmax));
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = tail_mask(imin(kLanes, n - i));
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), max_val));
    _mm512_mask_storeu_ps(x + i, m, e);
    vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
  }
  const __m512 inv_sum = _mm512_set1_ps(1.0f / hsum(vsum));
  for (int64_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = tail_mask(imin(kLanes, n - i));
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv_sum));
  }
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = tail_mask(imin(kLanes, n - i));
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 u = _mm512_maskz_loadu_ps(m, up + i);
    const __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g))));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(s, u));
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
      const __mmask16 mask = tail_mask(nk);
      const __m512 sv = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), mask, scores);
      const float block_max = hmax(sv);
      const float m_new = block_max > m[i] ? block_max : m[i];
      const float corr = m[i] == -INFINITY ? 0.0f : __builtin_expf(m[i] - m_new);
      const __m512 p = exp_ps(_mm512_sub_ps(sv, _mm512_set1_ps(m_new)));
      _mm512_store_ps(scores, p);
      l[i] = l[i] * corr + hsum(p);
      m[i] = m_new;
      const __m512 corr_v = _mm512_set1_ps(corr);
      float* out = out_rows[i];
      int64_t d = 0;
      for (; d < head_dim; d += kLanes) {
        const __mmask16 dm = tail_mask(imin(kLanes, head_dim - d));
        __m512 acc = _mm512_mul_ps(_mm512_maskz_loadu_ps(dm, out + d), corr_v);
        for (int64_t jj = 0; jj < nk; ++jj) {
          acc = _mm512_fmadd_ps(_mm512_set1_ps(scores[jj]),
                                _mm512_maskz_loadu_ps(dm, v_rows[j0 + jj] + kv_offset + d), acc);
        }
        _mm512_mask_storeu_ps(out + d, dm, acc);
      }
    }
  }
  for (int64_t i = 0; i < num_queries; ++i) {
    const __m512 inv_l = _mm512_set1_ps(l[i] > 0.0f ? 1.0f / l[i] : 0.0f);
    float* out = out_rows[i];
    int64_t d = 0;
    for (; d < head_dim; d += kLanes) {
      const __mmask16 dm = tail_mask(imin(kLanes, head_dim - d));
      _mm512_mask_storeu_ps(out + d, dm, _mm512_mul_ps(_mm512_maskz_loadu_ps(dm, out + d), inv_l));
    }
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
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  const __m512 mul = _mm512_set1_ps(0.999999f);
  const __m512 add = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], mul, add);
  }
  for (int i = 1; i < kChains; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  *sink = hsum(acc[0]);
  return static_cast<double>(iters) * kChains * kLanes * 2;
}

float read_probe(const float* x, int64_t n) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    for (int v = 0; v < 4; ++v) acc[v] = _mm512_add_ps(acc[v], _mm512_loadu_ps(x + i + v * kLanes));
  }
  float sum = hsum(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += x[i];
  return sum;
}

}  // namespace

void register_avx512(KernelTable& table) {
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

}  // namespace nibble::kernels::avx512
