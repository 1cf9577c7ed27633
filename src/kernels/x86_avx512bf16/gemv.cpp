// Decode-shaped matmul (num_tokens < kGemmMinTokens): one pass over the weights, one row at a time
// for one token (a single sequential stream); with 2-3 tokens two rows at a time, each weight chunk
// decoded once and used for every token. Activations are rounded as activations.h says, once per
// call, into a per-thread scratch laid out to match the weight decode (no shuffles in the loop).
//
//  - 4-bit (NVFP4, NVFP4-CT, MXFP4), 64 bytes = 128 elements per step: a vpermb table maps each
//    nibble to u8 = 2 * E2M1 + 12 (0..24, exact); low nibbles (elements 2j) and high nibbles
//    (2j+1) go into two vpdpbusd against the even / odd int8 activations. Lane i of the int32 sum
//    covers elements 8i..8i+7; it starts at -12 * sum(q) of those elements (the +12 offset), is
//    converted to fp32 once per 128 elements and multiplied by weight block scale x activation
//    group scale x 0.5 per lane. The tensor multiplier is applied once per row.
//  - FP8 E4M3, 64 bytes per step: two vpermi2b over 128-entry tables give the low and high byte of
//    the exact BF16 value of each code's magnitude, the sign bit is or-ed in, and unpacklo/hi
//    interleave them into two vectors of 32 BF16; the activations are stored in that unpack order.
//    vdpbf16ps accumulates in fp32. Scales per row, or per 128 columns for 128x128 blocks.
//  - BF16, 64 bytes per step: vdpbf16ps on the stored pairs against BF16 activations.
//
// Tails: a row's last step loads only the bytes the row has (masked); the activation scratch is
// zero past K, so padding contributes nothing. Formats or layouts not handled here return false.
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

#include "formats/block_format.h"
#include "formats/element.h"
#include "kernels/x86_avx512bf16/activations.h"
#include "kernels/x86_avx512bf16/avx512bf16_kernels.h"

namespace nibble::kernels::avx512bf16 {
namespace {

constexpr int kLanes = 16;
constexpr int64_t kPrefetchBytes = 2048;  // how far ahead of the decode the weight stream is fetched

// Weight rows per pass. One token: one row at a time, so the weights are read as one sequential
// stream (measured from DRAM on Zen 4: 4 interleaved rows streamed at 55-75% of one row's speed).
// 2-3 tokens: two rows, each decoded weight vector used by every token.
template <int kTokens>
constexpr int rows_per_pass() {
  return kTokens == 1 ? 1 : 2;
}

inline int64_t imin(int64_t a, int64_t b) {
  return a < b ? a : b;
}

inline __mmask64 byte_mask(int64_t n) {
  return n >= 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1;
}

// Through memory: g++ 12's 512->256 extract intrinsics trip -Wuninitialized (GCC bug 105593).
inline float hsum(__m512 v) {
  alignas(64) float lanes[kLanes];
  _mm512_store_ps(lanes, v);
  __m256 s8 = _mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8));
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
  return _mm_cvtss_f32(s4);
}

// Per-thread scratch for the rounded activations (grown, never shrunk; freed at thread exit).
// A plain struct in an anonymous namespace: no template instance shared with generic code.
struct Scratch {
  void* ptr = nullptr;
  size_t bytes = 0;
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { std::free(ptr); }
  uint8_t* get(size_t need) {
    if (need > bytes) {
      std::free(ptr);
      bytes = (need + 4095) & ~size_t{4095};
      ptr = std::aligned_alloc(64, bytes);
      NIBBLE_CHECK(ptr != nullptr, "out of memory for GEMV activation scratch");
    }
    return static_cast<uint8_t*>(ptr);
  }
};

uint8_t* scratch(size_t need) {
  thread_local Scratch s;
  return s.get(need);
}

// ---------------------------------------------------------------------------------------------
// 4-bit weights

// Per 128 columns of one token: q of the even columns (64 B), of the odd columns (64 B), the
// lanes' -12 * sum(q) (16 x int32) and the lanes' activation scale x 0.5 (16 x fp32).
struct Fp4ActChunk {
  int8_t q_even[64];
  int8_t q_odd[64];
  int32_t neg_offset[kLanes];
  float scale[kLanes];
};
static_assert(sizeof(Fp4ActChunk) == 256);

constexpr int64_t kFp4ChunkCols = 128;

// lane_scale: what the weight scales' lanes() leave out (times the 0.5 of u8 = 2 * E2M1 + 12).
void prepare_fp4_act(const float* x, int64_t num_cols, int64_t num_chunks, float lane_scale, Fp4ActChunk* out,
                     int8_t* q, float* group_scales) {
  const int64_t num_groups = act_groups(num_cols);
  quantize_act_q8(x, num_cols, q, group_scales);
  const int64_t padded = num_chunks * kFp4ChunkCols;
  std::memset(q + num_groups * kActGroup, 0, static_cast<size_t>(padded - num_groups * kActGroup));
  alignas(64) uint8_t even_idx[64], odd_idx[64];
  for (int i = 0; i < 64; ++i) {
    even_idx[i] = static_cast<uint8_t>(2 * i);
    odd_idx[i] = static_cast<uint8_t>(2 * i + 1);
  }
  const __m512i ei = _mm512_load_si512(even_idx), oi = _mm512_load_si512(odd_idx);
  const __m512i twelve = _mm512_set1_epi8(12);
  for (int64_t c = 0; c < num_chunks; ++c) {
    const __m512i a = _mm512_loadu_si512(q + c * kFp4ChunkCols);
    const __m512i b = _mm512_loadu_si512(q + c * kFp4ChunkCols + 64);
    const __m512i even = _mm512_permutex2var_epi8(a, ei, b);
    const __m512i odd = _mm512_permutex2var_epi8(a, oi, b);
    _mm512_store_si512(out[c].q_even, even);
    _mm512_store_si512(out[c].q_odd, odd);
    __m512i sum12 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), twelve, even);
    sum12 = _mm512_dpbusd_epi32(sum12, twelve, odd);
    _mm512_store_si512(out[c].neg_offset, _mm512_sub_epi32(_mm512_setzero_si512(), sum12));
    for (int i = 0; i < kLanes; ++i) {
      const int64_t g = (c * kFp4ChunkCols + 8 * i) / kActGroup;
      out[c].scale[i] = g < num_groups ? 0.5f * lane_scale * group_scales[g] : 0.0f;
    }
  }
}

// u8 = 2 * E2M1 + 12 for each nibble, repeated 4x so vpermb's index bits 5:4 do not matter.
struct Fp4Table {
  alignas(64) uint8_t lut[64];
  Fp4Table() {
    for (int i = 0; i < 64; ++i) lut[i] = static_cast<uint8_t>(2.0f * formats::kE2M1Values[i & 15] + 12.0f);
  }
};

// Up to 8 scale bytes as one integer (a row's last step may have fewer).
inline uint64_t load_scale_bytes(const uint8_t* s, int64_t avail) {
  uint64_t v = 0;
  std::memcpy(&v, s, static_cast<size_t>(avail < 8 ? avail : 8));
  return v;
}

// How the block scales of one 128-column step become 16 per-lane fp32 weight scales, times
// kLaneScale (folded into the activation scales instead).
struct Nvfp4Scales {  // UE4M3 (E4M3, sign ignored) per 16 columns: 8 bytes per step
  static constexpr int64_t kBytesPerChunk = 8;
  // E4M3 magnitude bits << 7 are the FP16 bits of value * 2^-8 (E4M3 subnormals become FP16
  // subnormals), and vcvtph2ps converts exactly.
  static constexpr float kLaneScale = 0x1p-8f;
  static __m512 lanes(const uint8_t* s, int64_t avail) {
    const uint64_t codes = load_scale_bytes(s, avail) & 0x7F7F7F7F7F7F7F7Full;
    const __m128i dup = _mm_shuffle_epi8(_mm_cvtsi64_si128(static_cast<long long>(codes)),
                                         _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
    return _mm512_cvtph_ps(_mm256_slli_epi16(_mm256_cvtepu8_epi16(dup), 7));
  }
};
struct Mxfp4Scales {  // E8M0 per 32 columns: 4 bytes per step
  static constexpr int64_t kBytesPerChunk = 4;
  static constexpr float kLaneScale = 1.0f;
  static __m512 lanes(const uint8_t* s, int64_t avail) {
    const uint64_t codes = load_scale_bytes(s, avail < 4 ? avail : 4);
    // Byte b of the codes into the top byte of lanes 4b..4b+3 (e << 24), then >> 1: e << 23, the
    // fp32 bits of 2^(e - 127); code 0 is 2^-127, the subnormal 0x00400000.
    const __m512i idx = _mm512_set_epi32(3 << 24, 3 << 24, 3 << 24, 3 << 24, 2 << 24, 2 << 24, 2 << 24, 2 << 24,
                                         1 << 24, 1 << 24, 1 << 24, 1 << 24, 0, 0, 0, 0);
    const __m512i top = _mm512_maskz_permutexvar_epi8(0x8888888888888888ull, idx,
                                                      _mm512_set1_epi32(static_cast<int>(codes)));
    return _mm512_castsi512_ps(
        _mm512_max_epu32(_mm512_srli_epi32(top, 1), _mm512_set1_epi32(0x00400000)));
  }
};

// y[t, n + r] for r < kRows, t < kTokens.
template <typename S, int kRows, int kTokens>
void fp4_rows(const Fp4ActChunk* const* act, int64_t num_chunks, const MatWeight& w, int64_t n, float mult,
              float* y, int64_t ldy, __m512i lut) {
  const uint8_t* rows[kRows];
  const uint8_t* srows[kRows];
  for (int r = 0; r < kRows; ++r) {
    rows[r] = w.data + (n + r) * w.row_bytes;
    srows[r] = w.block_scales + ((n + r) / w.scale_tile_rows) * w.scale_row_bytes;
  }
  __m512 acc[kRows][kTokens];
  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kTokens; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  const int64_t full_chunks = imin(w.row_bytes / 64, w.scale_row_bytes / S::kBytesPerChunk);
  auto step = [&](int64_t c, bool full) {
    for (int r = 0; r < kRows; ++r) {
      // Far software prefetch (past the row end is the next row: rows are contiguous). The
      // decode takes about as long as the DRAM read, and the hardware prefetcher alone lets
      // them run one after the other.
      _mm_prefetch(reinterpret_cast<const char*>(rows[r] + c * 64 + kPrefetchBytes), _MM_HINT_T0);
      const __m512i wb = full ? _mm512_loadu_si512(rows[r] + c * 64)
                              : _mm512_maskz_loadu_epi8(byte_mask(w.row_bytes - c * 64), rows[r] + c * 64);
      const __m512i lo = _mm512_permutexvar_epi8(wb, lut);
      const __m512i hi = _mm512_permutexvar_epi8(_mm512_srli_epi16(wb, 4), lut);
      const int64_t s_left = w.scale_row_bytes - c * S::kBytesPerChunk;
      const int64_t s_avail = full ? S::kBytesPerChunk : (s_left > 0 ? s_left : 0);
      const __m512 ws = S::lanes(srows[r] + c * S::kBytesPerChunk, s_avail);
      for (int t = 0; t < kTokens; ++t) {
        const Fp4ActChunk& a = act[t][c];
        __m512i dot = _mm512_load_si512(a.neg_offset);
        dot = _mm512_dpbusd_epi32(dot, lo, _mm512_load_si512(a.q_even));
        dot = _mm512_dpbusd_epi32(dot, hi, _mm512_load_si512(a.q_odd));
        acc[r][t] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(ws, _mm512_load_ps(a.scale)), acc[r][t]);
      }
    }
  };
  int64_t c = 0;
  for (; c < full_chunks; ++c) step(c, true);
  for (; c < num_chunks; ++c) step(c, false);
  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kTokens; ++t) y[t * ldy + n + r] = hsum(acc[r][t]) * mult;
  }
}

template <typename S, int kTokens>
void fp4_gemv(const float* x, const MatWeight& w, int64_t n_begin, int64_t n_end, float mult, float* y,
              int64_t ldy) {
  static const Fp4Table table;
  const __m512i lut = _mm512_load_si512(table.lut);
  const int64_t num_cols = w.num_cols;
  // Steps cover the stored row (padded to the block); the activations are zero past K.
  const int64_t num_chunks = (w.row_bytes + 63) / 64;
  const int64_t q_bytes = (num_chunks * kFp4ChunkCols + 63) & ~int64_t{63};
  const int64_t groups_bytes = (act_groups(num_cols) * 4 + 63) & ~int64_t{63};
  const int64_t act_bytes = num_chunks * static_cast<int64_t>(sizeof(Fp4ActChunk));
  uint8_t* buf = scratch(static_cast<size_t>(kTokens * act_bytes + q_bytes + groups_bytes));
  auto* q = reinterpret_cast<int8_t*>(buf + kTokens * act_bytes);
  auto* group_scales = reinterpret_cast<float*>(buf + kTokens * act_bytes + q_bytes);
  const Fp4ActChunk* act[kTokens];
  for (int t = 0; t < kTokens; ++t) {
    auto* a = reinterpret_cast<Fp4ActChunk*>(buf + t * act_bytes);
    prepare_fp4_act(x + t * num_cols, num_cols, num_chunks, 1.0f / S::kLaneScale, a, q, group_scales);
    act[t] = a;
  }
  constexpr int kRows = rows_per_pass<kTokens>();
  int64_t n = n_begin;
  for (; n + kRows <= n_end; n += kRows) fp4_rows<S, kRows, kTokens>(act, num_chunks, w, n, mult, y, ldy, lut);
  for (; n < n_end; ++n) fp4_rows<S, 1, kTokens>(act, num_chunks, w, n, mult, y, ldy, lut);
}

template <typename S>
bool fp4_dispatch(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin, int64_t n_end,
                  float mult, float* y, int64_t ldy) {
  switch (num_tokens) {
    case 1:
      fp4_gemv<S, 1>(x, w, n_begin, n_end, mult, y, ldy);
      return true;
    case 2:
      fp4_gemv<S, 2>(x, w, n_begin, n_end, mult, y, ldy);
      return true;
    case 3:
      fp4_gemv<S, 3>(x, w, n_begin, n_end, mult, y, ldy);
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// FP8 E4M3 and BF16 weights (BF16 activations)

constexpr int64_t kBf16ChunkCols = 64;  // FP8: 64 bytes of codes; BF16: two 32-element steps

// BF16 bytes of each E4M3 magnitude code (0..127): exact, subnormals included (0x7F, NaN, is
// rejected at load time).
struct E4m3Tables {
  alignas(64) uint8_t lo[128];
  alignas(64) uint8_t hi[128];
  E4m3Tables() {
    for (int c = 0; c < 128; ++c) {
      const float v = formats::e4m3_decode(static_cast<uint8_t>(c));
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      const uint32_t bf = bits >> 16;  // exact: E4M3 has 3 mantissa bits
      lo[c] = static_cast<uint8_t>(bf & 0xFF);
      hi[c] = static_cast<uint8_t>(bf >> 8);
    }
  }
};

// FP8: the BF16 activations of each 64 columns in unpack order: the first 32 are columns
// 16L + 0..7 of each 16-column lane L (unpacklo), the next 32 columns 16L + 8..15 (unpackhi).
void prepare_fp8_act(const float* x, int64_t num_cols, int64_t num_chunks, uint16_t* out, uint16_t* tmp) {
  round_act_bf16(x, num_cols, tmp);
  const int64_t rounded = (num_cols + 31) & ~int64_t{31};
  std::memset(tmp + rounded, 0, static_cast<size_t>(num_chunks * kBf16ChunkCols - rounded) * 2);
  alignas(64) uint16_t idx_lo[32], idx_hi[32];
  for (int i = 0; i < 32; ++i) {
    const int lane = i / 8, j = i % 8;
    idx_lo[i] = static_cast<uint16_t>(16 * lane + j);
    idx_hi[i] = static_cast<uint16_t>(16 * lane + 8 + j);
  }
  const __m512i il = _mm512_load_si512(idx_lo), ih = _mm512_load_si512(idx_hi);
  for (int64_t c = 0; c < num_chunks; ++c) {
    const __m512i a = _mm512_loadu_si512(tmp + c * kBf16ChunkCols);
    const __m512i b = _mm512_loadu_si512(tmp + c * kBf16ChunkCols + 32);
    _mm512_store_si512(out + c * kBf16ChunkCols, _mm512_permutex2var_epi16(a, il, b));
    _mm512_store_si512(out + c * kBf16ChunkCols + 32, _mm512_permutex2var_epi16(a, ih, b));
  }
}

inline __m512bh as_bh(__m512i v) {
  return reinterpret_cast<const __m512bh&>(v);
}

struct Fp8Decode {
  __m512i lo0, lo1, hi0, hi1, sign;
  // Two vectors of 32 BF16 from 64 E4M3 codes, in unpack order.
  void decode(__m512i codes, __m512i& first, __m512i& second) const {
    const __m512i lo = _mm512_permutex2var_epi8(lo0, codes, lo1);
    __m512i hi = _mm512_permutex2var_epi8(hi0, codes, hi1);
    hi = _mm512_ternarylogic_epi32(hi, codes, sign, 0xF8);  // hi | (codes & 0x80)
    first = _mm512_unpacklo_epi8(lo, hi);
    second = _mm512_unpackhi_epi8(lo, hi);
  }
};

// Scale layout of an FP8 weight: one scale per row over the whole K (tensor / channel) or one per
// 128 columns (128x128 blocks).
inline float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

template <int kRows, int kTokens, bool kBlockScales>
void fp8_rows(const uint16_t* const* act, const MatWeight& w, int64_t n, const Fp8Decode& dec, float* y,
              int64_t ldy) {
  const int64_t num_cols = w.num_cols;
  const uint8_t* rows[kRows];
  const uint8_t* srows[kRows];
  for (int r = 0; r < kRows; ++r) {
    rows[r] = w.data + (n + r) * w.row_bytes;
    srows[r] = w.block_scales + ((n + r) / w.scale_tile_rows) * w.scale_row_bytes;
  }
  // Two dot-product chains per row and token (the unpacklo / unpackhi halves) so vdpbf16ps latency
  // never limits; block scales fold them into `scaled` once per 128 columns.
  __m512 dot0[kRows][kTokens], dot1[kRows][kTokens], scaled[kRows][kTokens];
  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kTokens; ++t) dot0[r][t] = dot1[r][t] = scaled[r][t] = _mm512_setzero_ps();
  }
  auto step = [&](int64_t k, bool full) {
    for (int r = 0; r < kRows; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(rows[r] + k + kPrefetchBytes), _MM_HINT_T0);
      const __m512i codes =
          full ? _mm512_loadu_si512(rows[r] + k) : _mm512_maskz_loadu_epi8(byte_mask(num_cols - k), rows[r] + k);
      __m512i first, second;
      dec.decode(codes, first, second);
      for (int t = 0; t < kTokens; ++t) {
        dot0[r][t] = _mm512_dpbf16_ps(dot0[r][t], as_bh(first), as_bh(_mm512_load_si512(act[t] + k)));
        dot1[r][t] = _mm512_dpbf16_ps(dot1[r][t], as_bh(second), as_bh(_mm512_load_si512(act[t] + k + 32)));
      }
    }
  };
  constexpr int64_t kBlockCols = 128;
  for (int64_t k0 = 0; k0 < num_cols; k0 += kBlockScales ? kBlockCols : num_cols) {
    const int64_t k_end = kBlockScales ? imin(num_cols, k0 + kBlockCols) : num_cols;
    int64_t k = k0;
    for (; k + kBf16ChunkCols <= k_end; k += kBf16ChunkCols) step(k, true);
    if (k < k_end) step(k, false);  // the row's last, partial step
    if (kBlockScales) {
      for (int r = 0; r < kRows; ++r) {
        const __m512 s = _mm512_set1_ps(load_f32(srows[r] + (k0 / kBlockCols) * 4));
        for (int t = 0; t < kTokens; ++t) {
          scaled[r][t] = _mm512_fmadd_ps(_mm512_add_ps(dot0[r][t], dot1[r][t]), s, scaled[r][t]);
          dot0[r][t] = dot1[r][t] = _mm512_setzero_ps();
        }
      }
    }
  }
  for (int r = 0; r < kRows; ++r) {
    const float s = kBlockScales ? 1.0f : load_f32(srows[r]);
    for (int t = 0; t < kTokens; ++t) {
      const __m512 sum = kBlockScales ? scaled[r][t] : _mm512_add_ps(dot0[r][t], dot1[r][t]);
      y[t * ldy + n + r] = hsum(sum) * s;
    }
  }
}

template <int kRows, int kTokens>
void bf16_rows(const uint16_t* const* act, const MatWeight& w, int64_t n, float* y, int64_t ldy) {
  const int64_t num_cols = w.num_cols;
  const uint8_t* rows[kRows];
  for (int r = 0; r < kRows; ++r) rows[r] = w.data + (n + r) * w.row_bytes;
  __m512 acc[kRows][kTokens][2];
  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kTokens; ++t) acc[r][t][0] = acc[r][t][1] = _mm512_setzero_ps();
  }
  int64_t k = 0;
  if (kRows == 1) {
    // One row: first the elements before the row's next 64-byte boundary (mapped checkpoints put
    // rows anywhere), so every full-width weight load below is aligned (a load split across two
    // cache lines costs twice, and streaming from DRAM felt it).
    const auto addr = reinterpret_cast<uintptr_t>(rows[0]);
    const int64_t head = addr % 2 == 0 ? imin(num_cols, static_cast<int64_t>((64 - addr % 64) % 64) / 2) : 0;
    if (head > 0) {
      const __mmask32 m = (__mmask32{1} << head) - 1;
      const __m512i wv = _mm512_maskz_loadu_epi16(m, rows[0]);
      for (int t = 0; t < kTokens; ++t)
        acc[0][t][0] = _mm512_dpbf16_ps(acc[0][t][0], as_bh(wv), as_bh(_mm512_maskz_loadu_epi16(m, act[t])));
      k = head;
    }
  }
  for (; k + 64 <= num_cols; k += 64) {
    for (int r = 0; r < kRows; ++r) {
      const __m512i w0 = _mm512_loadu_si512(rows[r] + 2 * k);
      const __m512i w1 = _mm512_loadu_si512(rows[r] + 2 * k + 64);
      for (int t = 0; t < kTokens; ++t) {
        acc[r][t][0] = _mm512_dpbf16_ps(acc[r][t][0], as_bh(w0), as_bh(_mm512_loadu_si512(act[t] + k)));
        acc[r][t][1] = _mm512_dpbf16_ps(acc[r][t][1], as_bh(w1), as_bh(_mm512_loadu_si512(act[t] + k + 32)));
      }
    }
  }
  for (; k < num_cols; k += 32) {
    const int64_t left = imin(32, num_cols - k);
    const __mmask32 m = left >= 32 ? ~__mmask32{0} : (__mmask32{1} << left) - 1;
    for (int r = 0; r < kRows; ++r) {
      const __m512i wv = _mm512_maskz_loadu_epi16(m, rows[r] + 2 * k);
      for (int t = 0; t < kTokens; ++t)
        acc[r][t][0] = _mm512_dpbf16_ps(acc[r][t][0], as_bh(wv), as_bh(_mm512_maskz_loadu_epi16(m, act[t] + k)));
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kTokens; ++t) y[t * ldy + n + r] = hsum(_mm512_add_ps(acc[r][t][0], acc[r][t][1]));
  }
}

// kKind: 0 = BF16 weights, 1 = FP8 with one scale per row, 2 = FP8 with 128-column block scales.
template <int kKind, int kTokens>
void bf16_act_gemv(const float* x, const MatWeight& w, int64_t n_begin, int64_t n_end, float* y, int64_t ldy) {
  const int64_t num_cols = w.num_cols;
  const int64_t num_chunks = (num_cols + kBf16ChunkCols - 1) / kBf16ChunkCols;
  const int64_t act_elems = num_chunks * kBf16ChunkCols;
  uint8_t* buf = scratch(static_cast<size_t>((kTokens + 1) * act_elems * 2));
  const uint16_t* act[kTokens];
  auto* tmp = reinterpret_cast<uint16_t*>(buf + kTokens * act_elems * 2);
  for (int t = 0; t < kTokens; ++t) {
    auto* a = reinterpret_cast<uint16_t*>(buf + t * act_elems * 2);
    if (kKind == 0) {
      round_act_bf16(x + t * num_cols, num_cols, a);
    } else {
      prepare_fp8_act(x + t * num_cols, num_cols, num_chunks, a, tmp);
    }
    act[t] = a;
  }
  constexpr int kRows = rows_per_pass<kTokens>();
  if constexpr (kKind == 0) {
    int64_t n = n_begin;
    for (; n + kRows <= n_end; n += kRows) bf16_rows<kRows, kTokens>(act, w, n, y, ldy);
    for (; n < n_end; ++n) bf16_rows<1, kTokens>(act, w, n, y, ldy);
  } else {
    static const E4m3Tables tables;
    Fp8Decode dec;
    dec.lo0 = _mm512_load_si512(tables.lo);
    dec.lo1 = _mm512_load_si512(tables.lo + 64);
    dec.hi0 = _mm512_load_si512(tables.hi);
    dec.hi1 = _mm512_load_si512(tables.hi + 64);
    dec.sign = _mm512_set1_epi8(static_cast<char>(0x80));
    constexpr bool kBlock = kKind == 2;
    int64_t n = n_begin;
    for (; n + kRows <= n_end; n += kRows) fp8_rows<kRows, kTokens, kBlock>(act, w, n, dec, y, ldy);
    for (; n < n_end; ++n) fp8_rows<1, kTokens, kBlock>(act, w, n, dec, y, ldy);
  }
}

template <int kKind>
bool bf16_act_dispatch(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin, int64_t n_end,
                       float* y, int64_t ldy) {
  switch (num_tokens) {
    case 1:
      bf16_act_gemv<kKind, 1>(x, w, n_begin, n_end, y, ldy);
      return true;
    case 2:
      bf16_act_gemv<kKind, 2>(x, w, n_begin, n_end, y, ldy);
      return true;
    case 3:
      bf16_act_gemv<kKind, 3>(x, w, n_begin, n_end, y, ldy);
      return true;
    default:
      return false;
  }
}

}  // namespace

bool gemv(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin, int64_t n_end, float* y,
          int64_t ldy) {
  if (n_begin >= n_end) return true;
  if (w.format == WeightFormat::kBF16) return bf16_act_dispatch<0>(x, num_tokens, w, n_begin, n_end, y, ldy);
  const formats::BlockFormat* bf = block_format_of(w.format);
  if (bf == nullptr) return false;
  if (bf->element->bits == 4) {
    // 4-bit codes, one block scale per 16 (E4M3) or 32 (E8M0) columns of each row.
    if (bf->block_rows != 1) return false;
    // The per-row multiplier of the block scale: multiplier(s, T) = s * multiplier(1, T) for both
    // NVFP4 rules (s * S2 and s / G); MXFP4 has none (multiplier(s, 1) = s).
    const float mult = bf->multiplier(1.0f, w.tensor_scale);
    if (bf->block_cols == 16 && bf->scale == &formats::kScaleE4M3)
      return fp4_dispatch<Nvfp4Scales>(x, num_tokens, w, n_begin, n_end, mult, y, ldy);
    if (bf->block_cols == 32 && bf->scale == &formats::kScaleE8M0)
      return fp4_dispatch<Mxfp4Scales>(x, num_tokens, w, n_begin, n_end, mult, y, ldy);
    return false;
  }
  if (bf->element == &formats::kE4M3Codec && bf->scale == &formats::kScaleF32) {
    if (bf->block_cols == formats::kWholeDim)
      return bf16_act_dispatch<1>(x, num_tokens, w, n_begin, n_end, y, ldy);
    if (bf->block_cols == 128) return bf16_act_dispatch<2>(x, num_tokens, w, n_begin, n_end, y, ldy);
  }
  return false;
}

}  // namespace nibble::kernels::avx512bf16
