// Prefill- and batch-shaped matmul (num_tokens >= kGemmMinTokens) on dot-product instructions.
//
// Tokens run along the vector lanes (16 per zmm, a tile of 32 tokens is two zmm) and weight rows
// are broadcast, 32 bits at a time:
//  - BF16 / FP8 weights (vdpbf16ps): one 32-bit word is a pair of BF16 values along K, so a row
//    of BF16 weights is read in place, with no copy. FP8 E4M3 rows are decoded to BF16 (exact)
//    into a panel; their F32 scales multiply the fp32 accumulators per row and per 128-column
//    block. Micro tile: 12 rows x 32 tokens (24 accumulators).
//  - 4-bit weights (vpdpbusd, u8 x s8 -> int32): a word is four weight codes decoded to
//    2 * E2M1 + 12 (unsigned, 0..24) times four int8 activations of one token; the +12 is taken
//    back by starting each block's int32 sum at -12 * sum(q over the block) of that token. Per
//    weight block the int32 sum is converted and multiplied by (weight multiplier / 2) x (token's
//    group scale) into the fp32 accumulator. Micro tile: 6 rows x 32 tokens.
// Activations are rounded by activations.h (the same rule as gemv.cpp) and packed once per call
// as [token tile][word along K][32 tokens]. Weights go by blocks of kNb rows x kKc columns: a
// block is decoded once (FP8, 4-bit) and used by every token tile; partial results wait in a
// [token tile][row][32] buffer and are written to y once K is done.
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "formats/block_format.h"
#include "kernels/x86_avx512bf16/activations.h"
#include "kernels/x86_avx512bf16/avx512bf16_kernels.h"

namespace nibble::kernels::avx512bf16 {
namespace {

constexpr int kLanes = 16;
constexpr int kTileTokens = 32;  // tokens per token tile (two zmm)
constexpr int64_t kKc = 512;     // columns per K block: a multiple of every scale block (16..128)
constexpr int kRowsBf16 = 12;    // weight rows per BF16 micro tile
constexpr int kRowsQ8 = 6;       // weight rows per int8 micro tile
constexpr int64_t kNb = 96;      // weight rows per block: a multiple of both micro tile heights
constexpr int64_t kMaxBlocksPerKc = kKc / 16;
// How far ahead rows read in place are prefetched (4 lines: measured best of 0..2048 for 16
// tokens x 151936 x 1024 BF16 streamed from memory on Zen 4).
constexpr int64_t kPrefetchBytes = 256;

inline int64_t imin(int64_t a, int64_t b) {
  return a < b ? a : b;
}

inline uint32_t load_u32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline __m512bh as_bh(__m512i v) {
  return (__m512bh)v;
}

// Per-thread buffers, grown as needed and kept (each matmul call packs its own activations).
struct Scratch {
  std::vector<uint8_t> x;      // packed activations
  std::vector<uint8_t> extra;  // 4-bit: activation scales and block corrections
  std::vector<uint8_t> row;    // one rounded activation row
  std::vector<uint8_t> panel;  // decoded weights of one block
  std::vector<uint8_t> c;      // partial sums [token tile][kNb][32]
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

template <typename T>
T* aligned(std::vector<uint8_t>& v, int64_t count) {
  const auto bytes = static_cast<size_t>(count) * sizeof(T) + 64;
  if (v.size() < bytes) v.resize(bytes);
  const auto addr = reinterpret_cast<uintptr_t>(v.data());
  return reinterpret_cast<T*>(v.data() + ((64 - addr % 64) % 64));
}

// ---- activations ----

// xp[tile][p][32]: lane j holds token (tile * 32 + j)'s BF16 pair (x[2p], x[2p+1]); zero past M.
void pack_bf16(const float* x, int64_t num_tokens, int64_t num_cols, uint32_t* xp, uint16_t* row) {
  const int64_t num_pairs = (num_cols + 1) / 2;
  const int64_t num_tiles = (num_tokens + kTileTokens - 1) / kTileTokens;
  for (int64_t t = 0; t < num_tiles; ++t) {
    uint32_t* dst = xp + t * num_pairs * kTileTokens;
    for (int64_t j = 0; j < kTileTokens; ++j) {
      const int64_t m = t * kTileTokens + j;
      if (m >= num_tokens) {
        for (int64_t p = 0; p < num_pairs; ++p) dst[p * kTileTokens + j] = 0;
        continue;
      }
      round_act_bf16(x + m * num_cols, num_cols, row);
      for (int64_t p = 0; p < num_pairs; ++p) dst[p * kTileTokens + j] = load_u32(row + 2 * p);
    }
  }
}

// The int8 activations of the 4-bit path, per token tile:
//   xq[tile][quad][32]   four int8 values x[4i..4i+3] of token j in lane j
//   xs[tile][group][32]  the token's scale of each group of 32 columns
//   xc[tile][block][32]  -12 * sum of the token's q over each weight block (undoes the +12)
struct PackedQ8 {
  uint32_t* xq;
  float* xs;
  int32_t* xc;
  int64_t num_quads, num_groups, num_blocks;  // per token tile
};

void pack_q8(const float* x, int64_t num_tokens, int64_t num_cols, int block_elems, const PackedQ8& pk,
             int8_t* q, float* scales) {
  const int64_t num_tiles = (num_tokens + kTileTokens - 1) / kTileTokens;
  for (int64_t t = 0; t < num_tiles; ++t) {
    uint32_t* xq = pk.xq + t * pk.num_quads * kTileTokens;
    float* xs = pk.xs + t * pk.num_groups * kTileTokens;
    int32_t* xc = pk.xc + t * pk.num_blocks * kTileTokens;
    for (int64_t j = 0; j < kTileTokens; ++j) {
      const int64_t m = t * kTileTokens + j;
      if (m >= num_tokens) {
        for (int64_t i = 0; i < pk.num_quads; ++i) xq[i * kTileTokens + j] = 0;
        for (int64_t g = 0; g < pk.num_groups; ++g) xs[g * kTileTokens + j] = 0.0f;
        for (int64_t b = 0; b < pk.num_blocks; ++b) xc[b * kTileTokens + j] = 0;
        continue;
      }
      quantize_act_q8(x + m * num_cols, num_cols, q, scales);
      for (int64_t i = 0; i < pk.num_quads; ++i) xq[i * kTileTokens + j] = load_u32(q + 4 * i);
      for (int64_t g = 0; g < pk.num_groups; ++g) xs[g * kTileTokens + j] = scales[g];
      // Block sums through vpsadbw on q ^ 0x80 (q + 128 as u8): sums of 8 bytes, less 128 * 8.
      for (int64_t g = 0; g < pk.num_groups; ++g) {
        const __m256i u =
            _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + g * kActGroup)),
                             _mm256_set1_epi8(static_cast<char>(0x80)));
        alignas(32) int64_t eighths[4];
        _mm256_store_si256(reinterpret_cast<__m256i*>(eighths), _mm256_sad_epu8(u, _mm256_setzero_si256()));
        if (block_elems == 16) {
          xc[(2 * g) * kTileTokens + j] = -12 * static_cast<int32_t>(eighths[0] + eighths[1] - 128 * 16);
          xc[(2 * g + 1) * kTileTokens + j] = -12 * static_cast<int32_t>(eighths[2] + eighths[3] - 128 * 16);
        } else {
          xc[g * kTileTokens + j] =
              -12 * static_cast<int32_t>(eighths[0] + eighths[1] + eighths[2] + eighths[3] - 128 * 32);
        }
      }
    }
  }
}

// ---- micro tiles ----

// c[r][j] (+)= s[r] * sum_p dot(w[r] pair p, x pair p of token j), r < 12, j < 16 * kVecs.
// Row r's pairs start at w + r * ldw bytes; s = nullptr means 1.
template <int kVecs>
void tile_bf16(const uint32_t* xp, int64_t num_pairs, const uint8_t* w, int64_t ldw, float* c,
               const float* row_scale, bool accumulate) {
  __m512 acc[kRowsBf16][kVecs];
  for (auto& row : acc) {
    for (auto& a : row) a = _mm512_setzero_ps();
  }
  // Four base pointers, rows at +0, +ldw, +2 ldw from each: few registers for 12 rows.
  const uint8_t* base[4] = {w, w + 3 * ldw, w + 6 * ldw, w + 9 * ldw};
  for (int64_t p = 0; p < num_pairs; ++p) {
    if (p % 16 == 0) {
      // One cache line of each row per 16 pairs: ask for one kPrefetchBytes ahead (rows read in
      // place stream from memory when few tokens share them).
      for (int r = 0; r < kRowsBf16; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(base[r / 3] + (r % 3) * ldw + 4 * p + kPrefetchBytes),
                     _MM_HINT_T0);
      }
    }
    __m512bh xv[kVecs];
    for (int v = 0; v < kVecs; ++v) xv[v] = as_bh(_mm512_load_si512(xp + p * kTileTokens + v * kLanes));
#pragma GCC unroll 12
    for (int r = 0; r < kRowsBf16; ++r) {
      const __m512bh b =
          as_bh(_mm512_set1_epi32(static_cast<int>(load_u32(base[r / 3] + (r % 3) * ldw + 4 * p))));
      for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], xv[v], b);
    }
  }
  for (int r = 0; r < kRowsBf16; ++r) {
    const __m512 s = _mm512_set1_ps(row_scale != nullptr ? row_scale[r] : 1.0f);
    for (int v = 0; v < kVecs; ++v) {
      float* dst = c + r * kTileTokens + v * kLanes;
      const __m512 prev = accumulate ? _mm512_load_ps(dst) : _mm512_setzero_ps();
      _mm512_store_ps(dst, _mm512_fmadd_ps(acc[r][v], s, prev));
    }
  }
}

// tile_bf16 for at most 8 tokens, in ymm: Zen 4 runs a ymm vdpbf16ps in half the time of a zmm
// one, so a small batch (or the last few tokens of a large one) does not pay for 16 lanes.
void tile_bf16_8(const uint32_t* xp, int64_t num_pairs, const uint8_t* w, int64_t ldw, float* c,
                 const float* row_scale, bool accumulate) {
  __m256 acc[kRowsBf16];
  for (auto& a : acc) a = _mm256_setzero_ps();
  const uint8_t* base[4] = {w, w + 3 * ldw, w + 6 * ldw, w + 9 * ldw};
  for (int64_t p = 0; p < num_pairs; ++p) {
    if (p % 16 == 0) {
      for (int r = 0; r < kRowsBf16; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(base[r / 3] + (r % 3) * ldw + 4 * p + kPrefetchBytes),
                     _MM_HINT_T0);
      }
    }
    const __m256bh xv = (__m256bh)_mm256_load_si256(reinterpret_cast<const __m256i*>(xp + p * kTileTokens));
#pragma GCC unroll 12
    for (int r = 0; r < kRowsBf16; ++r) {
      const __m256bh b =
          (__m256bh)_mm256_set1_epi32(static_cast<int>(load_u32(base[r / 3] + (r % 3) * ldw + 4 * p)));
      acc[r] = _mm256_dpbf16_ps(acc[r], xv, b);
    }
  }
  for (int r = 0; r < kRowsBf16; ++r) {
    const __m256 s = _mm256_set1_ps(row_scale != nullptr ? row_scale[r] : 1.0f);
    float* dst = c + r * kTileTokens;
    const __m256 prev = accumulate ? _mm256_load_ps(dst) : _mm256_setzero_ps();
    _mm256_store_ps(dst, _mm256_fmadd_ps(acc[r], s, prev));
  }
}

// c[r][j] (+)= sum over blocks b of ws[r][b] * xs[group(b)][j] * (int32 sum over the block of
// w[r] u8 x q[j] s8, started at xc[b][j]), r < 6, j < 16 * kVecs. kQuads: 4-column words per
// weight block. w rows have stride kKc bytes, ws rows kMaxBlocksPerKc floats.
template <int kVecs, int kQuads>
void tile_q8(const uint32_t* xq, const float* xs, const int32_t* xc, int64_t num_blocks, const uint8_t* w,
             const float* ws, float* c, bool accumulate) {
  constexpr int kBlocksPerGroup = 8 / kQuads;
  __m512 acc[kRowsQ8][kVecs];
  for (auto& row : acc) {
    for (auto& a : row) a = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < num_blocks; ++b) {
    const int64_t g = b / kBlocksPerGroup;
    __m512 xsv[kVecs];
    __m512i xcv[kVecs];
    for (int v = 0; v < kVecs; ++v) {
      xsv[v] = _mm512_load_ps(xs + g * kTileTokens + v * kLanes);
      xcv[v] = _mm512_load_si512(xc + b * kTileTokens + v * kLanes);
    }
    const uint32_t* xb = xq + b * kQuads * kTileTokens;
#pragma GCC unroll 6
    for (int r = 0; r < kRowsQ8; ++r) {
      const uint8_t* wr = w + r * kKc + b * kQuads * 4;
      __m512i ai[kVecs];
      for (int v = 0; v < kVecs; ++v) ai[v] = xcv[v];
#pragma GCC unroll 8
      for (int q = 0; q < kQuads; ++q) {
        const __m512i wq = _mm512_set1_epi32(static_cast<int>(load_u32(wr + 4 * q)));
        for (int v = 0; v < kVecs; ++v) {
          ai[v] = _mm512_dpbusd_epi32(ai[v], wq, _mm512_load_si512(xb + q * kTileTokens + v * kLanes));
        }
      }
      const __m512 sw = _mm512_set1_ps(ws[r * kMaxBlocksPerKc + b]);
      for (int v = 0; v < kVecs; ++v) {
        acc[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[v]), _mm512_mul_ps(sw, xsv[v]), acc[r][v]);
      }
    }
  }
  for (int r = 0; r < kRowsQ8; ++r) {
    for (int v = 0; v < kVecs; ++v) {
      float* dst = c + r * kTileTokens + v * kLanes;
      _mm512_store_ps(dst, accumulate ? _mm512_add_ps(_mm512_load_ps(dst), acc[r][v]) : acc[r][v]);
    }
  }
}

// tile_q8 for at most 8 tokens, in ymm (see tile_bf16_8).
template <int kQuads>
void tile_q8_8(const uint32_t* xq, const float* xs, const int32_t* xc, int64_t num_blocks, const uint8_t* w,
               const float* ws, float* c, bool accumulate) {
  constexpr int kBlocksPerGroup = 8 / kQuads;
  __m256 acc[kRowsQ8];
  for (auto& a : acc) a = _mm256_setzero_ps();
  for (int64_t b = 0; b < num_blocks; ++b) {
    const __m256 xsv = _mm256_load_ps(xs + b / kBlocksPerGroup * kTileTokens);
    const __m256i xcv = _mm256_load_si256(reinterpret_cast<const __m256i*>(xc + b * kTileTokens));
    const uint32_t* xb = xq + b * kQuads * kTileTokens;
#pragma GCC unroll 6
    for (int r = 0; r < kRowsQ8; ++r) {
      const uint8_t* wr = w + r * kKc + b * kQuads * 4;
      __m256i ai = xcv;
#pragma GCC unroll 8
      for (int q = 0; q < kQuads; ++q) {
        ai = _mm256_dpbusd_epi32(ai, _mm256_set1_epi32(static_cast<int>(load_u32(wr + 4 * q))),
                                 _mm256_load_si256(reinterpret_cast<const __m256i*>(xb + q * kTileTokens)));
      }
      const __m256 sw = _mm256_set1_ps(ws[r * kMaxBlocksPerKc + b]);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ai), _mm256_mul_ps(sw, xsv), acc[r]);
    }
  }
  for (int r = 0; r < kRowsQ8; ++r) {
    float* dst = c + r * kTileTokens;
    _mm256_store_ps(dst, accumulate ? _mm256_add_ps(_mm256_load_ps(dst), acc[r]) : acc[r]);
  }
}

// y[m, n0 + r] = c[tile][r][j] for the rows and tokens of one weight block.
void store_block(const float* c, int64_t num_tokens, int64_t n0, int64_t num_rows, float* y, int64_t ldy) {
  for (int64_t m = 0; m < num_tokens; ++m) {
    const float* src = c + (m / kTileTokens) * kNb * kTileTokens + m % kTileTokens;
    float* dst = y + m * ldy + n0;
    for (int64_t r = 0; r < num_rows; ++r) dst[r] = src[r * kTileTokens];
  }
}

// ---- BF16 and FP8 weights ----

// E4M3 bytes -> BF16 (exact). BF16 of a normal code is its exponent and mantissa bits shifted
// into place and rebiased (+120 on the exponent); the 7 subnormal magnitudes m * 2^-9 are normal
// BF16 numbers. The high and low bytes of each magnitude's BF16 come from two 128-entry byte
// tables (vpermi2b), the sign bit is copied, and the bytes are interleaved into words.
struct E4m3Tables {
  alignas(64) uint8_t hi[128];
  alignas(64) uint8_t lo[128];
  E4m3Tables() {
    static constexpr uint16_t kSubnormal[8] = {0, 0x3B00, 0x3B80, 0x3BC0, 0x3C00, 0x3C20, 0x3C40, 0x3C60};
    for (int mag = 0; mag < 128; ++mag) {
      const auto bf16 = static_cast<uint16_t>(mag < 8 ? kSubnormal[mag] : (mag << 4) + 0x3C00);
      hi[mag] = static_cast<uint8_t>(bf16 >> 8);
      lo[mag] = static_cast<uint8_t>(bf16 & 0xFF);
    }
  }
};

void decode_e4m3_bf16(const uint8_t* src, int64_t count, uint16_t* dst) {
  static const E4m3Tables tables;
  const __m512i hi_a = _mm512_load_si512(tables.hi), hi_b = _mm512_load_si512(tables.hi + 64);
  const __m512i lo_a = _mm512_load_si512(tables.lo), lo_b = _mm512_load_si512(tables.lo + 64);
  const __m512i sign = _mm512_set1_epi8(static_cast<char>(0x80));
  // Qwords 0,4,1,5,2,6,3,7: the per-lane byte unpacks below then give elements in order.
  const __m512i order = _mm512_set_epi64(7, 3, 6, 2, 5, 1, 4, 0);
  for (int64_t i = 0; i < count; i += 64) {
    const int64_t n = imin(64, count - i);
    const __mmask64 m = n == 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1u;
    const __m512i v = _mm512_permutexvar_epi64(order, _mm512_maskz_loadu_epi8(m, src + i));
    __m512i hi = _mm512_permutex2var_epi8(hi_a, v, hi_b);  // index bit 7 (the sign) is ignored
    const __m512i lo = _mm512_permutex2var_epi8(lo_a, v, lo_b);
    hi = _mm512_ternarylogic_epi32(hi, v, sign, 0xF8);  // hi | (v & 0x80)
    const int64_t n0 = imin(32, n), n1 = n - n0;
    _mm512_mask_storeu_epi16(dst + i, n0 == 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << n0) - 1u),
                             _mm512_unpacklo_epi8(lo, hi));
    if (n1 > 0) {
      _mm512_mask_storeu_epi16(dst + i + 32,
                               n1 == 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << n1) - 1u),
                               _mm512_unpackhi_epi8(lo, hi));
    }
  }
}

void gemm_bf16(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin, int64_t n_end,
               float* y, int64_t ldy) {
  const int64_t num_cols = w.num_cols;
  const int64_t num_pairs = (num_cols + 1) / 2;
  const int64_t num_tiles = (num_tokens + kTileTokens - 1) / kTileTokens;
  const formats::BlockFormat* fp8 = block_format_of(w.format);  // nullptr for BF16
  const int64_t scale_cols =
      fp8 == nullptr || fp8->block_cols == formats::kWholeDim ? num_cols : fp8->block_cols;
  const int64_t sub_cols = imin(kKc, scale_cols);  // K per micro tile call: one scale per row

  Scratch& s = scratch();
  uint32_t* xp = aligned<uint32_t>(s.x, num_tiles * num_pairs * kTileTokens);
  pack_bf16(x, num_tokens, num_cols, xp, aligned<uint16_t>(s.row, (num_cols + 31) / 32 * 32));
  uint16_t* panel = aligned<uint16_t>(s.panel, kNb * kKc);
  float* c = aligned<float>(s.c, num_tiles * kNb * kTileTokens);
  float row_scale[kKc / 128 * kNb];  // FP8: [scale block][row] of one K block

  for (int64_t nb0 = n_begin; nb0 < n_end; nb0 += kNb) {
    const int64_t num_rows = imin(kNb, n_end - nb0);
    const int64_t num_micro = (num_rows + kRowsBf16 - 1) / kRowsBf16;
    for (int64_t kb0 = 0; kb0 < num_cols; kb0 += kKc) {
      const int64_t kc = imin(kKc, num_cols - kb0);
      // Decoded (FP8) or copied (BF16 tails) rows, zero padded to whole pairs and micro tiles.
      const int64_t padded = (kc + 1) & ~int64_t{1};
      auto decode_rows = [&](int64_t r_begin, int64_t r_end) {
        for (int64_t r = r_begin; r < r_end; ++r) {
          uint16_t* dst = panel + r * kKc;
          if (r >= num_rows) {
            std::memset(dst, 0, static_cast<size_t>(padded) * 2);
            continue;
          }
          const uint8_t* row = w.data + (nb0 + r) * w.row_bytes;
          if (fp8 == nullptr) {
            std::memcpy(dst, row + kb0 * 2, static_cast<size_t>(kc) * 2);
          } else {
            decode_e4m3_bf16(row + kb0, kc, dst);
          }
          if (padded != kc) dst[kc] = 0;
        }
      };
      const bool in_place = fp8 == nullptr && kc % 2 == 0 && num_rows % kRowsBf16 == 0;
      // One token tile: decode each micro tile's rows just before it runs (they stay in L1).
      // More: decode the whole block once, for every token tile.
      const bool per_micro = !in_place && num_tiles == 1;
      const uint8_t* wsrc = reinterpret_cast<const uint8_t*>(panel);
      int64_t ldw = kKc * 2;
      if (in_place) {
        wsrc = w.data + nb0 * w.row_bytes + kb0 * 2;  // BF16 rows in place
        ldw = w.row_bytes;
      } else if (!per_micro) {
        decode_rows(0, num_micro * kRowsBf16);
      }
      if (fp8 != nullptr) {
        // row_scale[sub block][row]: the F32 scale of each row for each scale block of this K block.
        // Rows of one scale tile (128 rows, or all) share a scale: decode it once per change.
        const uint8_t* last_sp = nullptr;
        float last_scale = 0.0f;
        for (int64_t s0 = 0; s0 < kc; s0 += sub_cols) {
          for (int64_t r = 0; r < num_micro * kRowsBf16; ++r) {
            const int64_t n = imin(nb0 + r, n_end - 1);
            const uint8_t* sp = w.block_scales + (n / w.scale_tile_rows) * w.scale_row_bytes +
                                (kb0 + s0) / scale_cols * fp8->scale->bytes;
            if (sp != last_sp) {
              last_sp = sp;
              last_scale = fp8->multiplier(fp8->scale->value(fp8->scale->load(sp)), w.tensor_scale);
            }
            row_scale[s0 / sub_cols * kNb + r] = last_scale;
          }
        }
      }
      for (int64_t t = 0; t < num_tiles; ++t) {
        const int64_t tile_tokens = num_tokens - t * kTileTokens;
        for (int64_t i = 0; i < num_micro; ++i) {
          if (per_micro) decode_rows(i * kRowsBf16, (i + 1) * kRowsBf16);
          for (int64_t s0 = 0; s0 < kc; s0 += sub_cols) {
            const float* scales =
                fp8 == nullptr ? nullptr : row_scale + (s0 / sub_cols * kNb + i * kRowsBf16);
            const uint32_t* xt = xp + (t * num_pairs + (kb0 + s0) / 2) * kTileTokens;
            const int64_t np = (imin(sub_cols, kc - s0) + 1) / 2;
            const uint8_t* wt = wsrc + i * kRowsBf16 * ldw + s0 * 2;
            float* ct = c + (t * kNb + i * kRowsBf16) * kTileTokens;
            const bool accumulate = kb0 + s0 > 0;
            if (tile_tokens > kLanes) {
              tile_bf16<2>(xt, np, wt, ldw, ct, scales, accumulate);
            } else if (tile_tokens > kLanes / 2) {
              tile_bf16<1>(xt, np, wt, ldw, ct, scales, accumulate);
            } else {
              tile_bf16_8(xt, np, wt, ldw, ct, scales, accumulate);
            }
          }
        }
      }
    }
    store_block(c, num_tokens, nb0, num_rows, y, ldy);
  }
}

// ---- 4-bit weights ----

// Stored 4-bit codes (element 2j in the low nibble of byte j) -> lut[code] bytes, 2 per input byte.
void decode_q4_u8(const uint8_t* src, int64_t num_bytes, __m512i lut, uint8_t* dst) {
  const __m512i low = _mm512_set1_epi16(0x000F);
  const __m512i high = _mm512_set1_epi16(0x0F00);
  for (int64_t i = 0; i < num_bytes; i += 32) {
    const int64_t n = imin(32, num_bytes - i);
    const __mmask32 m = n == 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << n) - 1u);
    const __m512i v = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, src + i));
    const __m512i codes =
        _mm512_or_si512(_mm512_and_si512(v, low), _mm512_and_si512(_mm512_slli_epi16(v, 4), high));
    const __mmask64 m2 = n == 32 ? ~__mmask64{0} : (__mmask64{1} << (2 * n)) - 1u;
    _mm512_mask_storeu_epi8(dst + 2 * i, m2, _mm512_shuffle_epi8(lut, codes));
  }
}

template <int kQuads>
void gemm_q8(const formats::BlockFormat& format, const float* x, int64_t num_tokens, const MatWeight& w,
             int64_t n_begin, int64_t n_end, float* y, int64_t ldy) {
  constexpr int kBlock = kQuads * 4;
  const int64_t num_cols = w.num_cols;
  const int64_t num_tiles = (num_tokens + kTileTokens - 1) / kTileTokens;
  const int64_t num_groups = act_groups(num_cols);

  // 2 * E2M1 + 12 per code, repeated in each 128-bit lane for vpshufb.
  alignas(64) uint8_t lut_bytes[64];
  for (int i = 0; i < 64; ++i) {
    const float value = format.element->decode(static_cast<uint8_t>(i % 16));
    lut_bytes[i] = static_cast<uint8_t>(static_cast<int>(2.0f * value) + 12);
  }
  const __m512i lut = _mm512_load_si512(lut_bytes);
  float scale_lut[256];
  for (int code = 0; code < 256; ++code) {
    scale_lut[code] =
        0.5f * format.multiplier(format.scale->value(static_cast<uint32_t>(code)), w.tensor_scale);
  }

  Scratch& s = scratch();
  PackedQ8 pk;
  pk.num_quads = num_groups * kActGroup / 4;
  pk.num_groups = num_groups;
  pk.num_blocks = num_groups * kActGroup / kBlock;
  pk.xq = aligned<uint32_t>(s.x, num_tiles * pk.num_quads * kTileTokens);
  const int64_t xs_floats = num_tiles * pk.num_groups * kTileTokens;
  float* extra = aligned<float>(s.extra, xs_floats + num_tiles * pk.num_blocks * kTileTokens);
  pk.xs = extra;
  pk.xc = reinterpret_cast<int32_t*>(extra + xs_floats);  // xs_floats is a multiple of 32: aligned
  int8_t* q = aligned<int8_t>(s.row, num_groups * (kActGroup + 4));
  pack_q8(x, num_tokens, num_cols, kBlock, pk, q, reinterpret_cast<float*>(q + num_groups * kActGroup));

  uint8_t* panel = aligned<uint8_t>(s.panel, kNb * kKc + kNb * kMaxBlocksPerKc * 4);
  float* ws = reinterpret_cast<float*>(panel + kNb * kKc);
  float* c = aligned<float>(s.c, num_tiles * kNb * kTileTokens);

  for (int64_t nb0 = n_begin; nb0 < n_end; nb0 += kNb) {
    const int64_t num_rows = imin(kNb, n_end - nb0);
    const int64_t num_micro = (num_rows + kRowsQ8 - 1) / kRowsQ8;
    for (int64_t kb0 = 0; kb0 < num_cols; kb0 += kKc) {
      const int64_t num_blocks = (imin(kKc, num_cols - kb0) + kBlock - 1) / kBlock;
      for (int64_t r = 0; r < num_micro * kRowsQ8; ++r) {
        uint8_t* dst = panel + r * kKc;
        float* wsr = ws + r * kMaxBlocksPerKc;
        if (r >= num_rows) {
          std::memset(dst, 0, static_cast<size_t>(num_blocks * kBlock));
          for (int64_t b = 0; b < num_blocks; ++b) wsr[b] = 0.0f;
          continue;
        }
        const int64_t n = nb0 + r;
        decode_q4_u8(w.data + n * w.row_bytes + kb0 / 2, num_blocks * kBlock / 2, lut, dst);
        const uint8_t* sp = w.block_scales + (n / w.scale_tile_rows) * w.scale_row_bytes + kb0 / kBlock;
        for (int64_t b = 0; b < num_blocks; ++b) wsr[b] = scale_lut[sp[b]];
      }
      for (int64_t t = 0; t < num_tiles; ++t) {
        const int64_t tile_tokens = num_tokens - t * kTileTokens;
        const uint32_t* xq = pk.xq + (t * pk.num_quads + kb0 / 4) * kTileTokens;
        const float* xs = pk.xs + (t * pk.num_groups + kb0 / kActGroup) * kTileTokens;
        const int32_t* xc = pk.xc + (t * pk.num_blocks + kb0 / kBlock) * kTileTokens;
        for (int64_t i = 0; i < num_micro; ++i) {
          const uint8_t* wt = panel + i * kRowsQ8 * kKc;
          const float* wst = ws + i * kRowsQ8 * kMaxBlocksPerKc;
          float* ct = c + (t * kNb + i * kRowsQ8) * kTileTokens;
          if (tile_tokens > kLanes) {
            tile_q8<2, kQuads>(xq, xs, xc, num_blocks, wt, wst, ct, kb0 > 0);
          } else if (tile_tokens > kLanes / 2) {
            tile_q8<1, kQuads>(xq, xs, xc, num_blocks, wt, wst, ct, kb0 > 0);
          } else {
            tile_q8_8<kQuads>(xq, xs, xc, num_blocks, wt, wst, ct, kb0 > 0);
          }
        }
      }
    }
    store_block(c, num_tokens, nb0, num_rows, y, ldy);
  }
}

}  // namespace

bool gemm(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin, int64_t n_end, float* y,
          int64_t ldy) {
  if (n_begin >= n_end || num_tokens <= 0) return true;
  if (w.format == WeightFormat::kBF16) {
    gemm_bf16(x, num_tokens, w, n_begin, n_end, y, ldy);
    return true;
  }
  const formats::BlockFormat* format = block_format_of(w.format);
  if (format == nullptr) return false;
  if (format->element->bits == 8 && format->element->name == "e4m3" && format->scale->bytes == 4 &&
      (format->block_cols == formats::kWholeDim ||
       (format->block_cols >= 128 && kKc % format->block_cols == 0))) {
    gemm_bf16(x, num_tokens, w, n_begin, n_end, y, ldy);
    return true;
  }
  if (format->element->bits == 4 && format->scale->bytes == 1 && format->block_rows == 1 &&
      format->pad_data_to_block &&
      w.row_bytes * 2 >= (w.num_cols + format->block_cols - 1) / format->block_cols * format->block_cols) {
    if (format->block_cols == 16) {
      gemm_q8<4>(*format, x, num_tokens, w, n_begin, n_end, y, ldy);
      return true;
    }
    if (format->block_cols == 32) {
      gemm_q8<8>(*format, x, num_tokens, w, n_begin, n_end, y, ldy);
      return true;
    }
  }
  return false;
}

}  // namespace nibble::kernels::avx512bf16
