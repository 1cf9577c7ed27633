// Pieces shared by the NEON translation units (neon_kernels.cpp: plain formats and elementwise
// ops; neon_quant.cpp: block-quantized formats): register helpers and the fp32 GEMM driver with
// its 8-row x 8-token register tile. Internal to arm_neon/; every file including it is compiled
// with the same (baseline aarch64) flags, so sharing inline functions across them is safe.
#pragma once

#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "kernels/kernel_table.h"

namespace nibble::kernels::neon {

// Fills the block-quantized formats' matmul and decode_row entries (neon_quant.cpp).
void register_neon_quant(KernelTable& table);

inline constexpr int kLanes = 4;
inline constexpr int kTileRows = 8;           // weight rows per GEMM micro-tile
inline constexpr int kTileTokens = 8;         // tokens per GEMM micro-tile (two q registers)
inline constexpr int64_t kKc = 512;           // K block of the GEMM (xt 64 KiB + wp 16 KiB on the stack)
inline constexpr int64_t kGemmMinTokens = 4;  // from this many tokens on, matmuls take the GEMM

inline int64_t imin(int64_t a, int64_t b) {
  return a < b ? a : b;
}

inline float hsum(float32x4_t v) {
  return vaddvq_f32(v);
}

// The first num_elems (< 4) floats at p, the other lanes 0.
inline float32x4_t load_tail_f32(const float* p, int64_t num_elems) {
  alignas(16) float staged[kLanes] = {};
  std::memcpy(staged, p, static_cast<size_t>(num_elems) * sizeof(float));
  return vld1q_f32(staged);
}

inline void store_tail(float* p, float32x4_t v, int64_t num_elems) {
  alignas(16) float staged[kLanes];
  vst1q_f32(staged, v);
  std::memcpy(p, staged, static_cast<size_t>(num_elems) * sizeof(float));
}

// tile[r][j] = sum_k wp[r][k] * xt[k][j] for r < kTileRows, j < 4 * kVecs.
template <int kVecs>
void micro_tile(const float* xt, const float* wp, int64_t num_k, float* tile) {
  float32x4_t acc[kTileRows][kVecs];
  for (int r = 0; r < kTileRows; ++r) {
    for (int v = 0; v < kVecs; ++v) acc[r][v] = vdupq_n_f32(0.0f);
  }
  for (int64_t k = 0; k < num_k; ++k) {
    float32x4_t xv[kVecs];
    for (int v = 0; v < kVecs; ++v) xv[v] = vld1q_f32(xt + k * kTileTokens + v * kLanes);
#pragma GCC unroll 8
    for (int r = 0; r < kTileRows; ++r) {
      const float b = wp[r * kKc + k];
      for (int v = 0; v < kVecs; ++v) acc[r][v] = vfmaq_n_f32(acc[r][v], xv[v], b);
    }
  }
  for (int r = 0; r < kTileRows; ++r) {
    for (int v = 0; v < kVecs; ++v) vst1q_f32(tile + r * kTileTokens + v * kLanes, acc[r][v]);
  }
}

// Y[m, n] for n in [n_begin, n_end), all tokens. Tokens go in groups of up to kGroupTiles
// register tiles (32 tokens); per group and K block of kKc columns each tile's tokens are
// transposed into xt[tile][k][8], then per 8 weight rows the rows are decoded to fp32 into
// wp[8][k] by `decoder.decode(n, k0, num_elems, out)` (k0 is always a multiple of kKc) once and
// multiplied with every tile of the group, so a decode is shared by 32 tokens. The weights are
// never dequantized as a whole. Each output sums its K blocks in order, whatever the grouping.
inline constexpr int kGroupTiles = 4;

template <typename D>
void gemm(const D& decoder, const float* x, int64_t num_tokens, int64_t num_cols, int64_t n_begin,
          int64_t n_end, float* y, int64_t ldy) {
  alignas(16) float xt[kGroupTiles][kKc * kTileTokens];  // [tile][k][token] of one K block, 64 KiB
  alignas(16) float wp[kTileRows * kKc];                 // [row][k] of one K block
  alignas(16) float tile[kTileRows * kTileTokens];
  constexpr int64_t kGroupTokens = kGroupTiles * kTileTokens;
  for (int64_t g0 = 0; g0 < num_tokens; g0 += kGroupTokens) {
    const int64_t group_tokens = imin(kGroupTokens, num_tokens - g0);
    const int64_t num_tiles = (group_tokens + kTileTokens - 1) / kTileTokens;
    for (int64_t k0 = 0; k0 < num_cols; k0 += kKc) {
      const int64_t num_k = imin(kKc, num_cols - k0);
      for (int64_t t = 0; t < num_tiles; ++t) {
        const int64_t m0 = g0 + t * kTileTokens;
        const int64_t num_m = imin(kTileTokens, num_tokens - m0);
        for (int64_t kk = 0; kk < num_k; ++kk) {
          float* dst = xt[t] + kk * kTileTokens;
          for (int64_t j = 0; j < num_m; ++j) dst[j] = x[(m0 + j) * num_cols + k0 + kk];
          for (int64_t j = num_m; j < kTileTokens; ++j) dst[j] = 0.0f;
        }
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
        for (int64_t t = 0; t < num_tiles; ++t) {
          const int64_t m0 = g0 + t * kTileTokens;
          const int64_t num_m = imin(kTileTokens, num_tokens - m0);
          if (num_m > kLanes) {
            micro_tile<2>(xt[t], wp, num_k, tile);
          } else {
            micro_tile<1>(xt[t], wp, num_k, tile);
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
}

}  // namespace nibble::kernels::neon
