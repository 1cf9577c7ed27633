// aarch64 NEON (Advanced SIMD) bodies: 4 fp32 lanes per q register, 32 registers. Only the ASIMD
// baseline is used (no dotprod / i8mm / bf16 / SVE), so they run on every aarch64 CPU (the DGX
// Spark's Cortex-X925 / A725 included) and under qemu-user; activations stay fp32 throughout, so
// every matmul matches the scalar reference to summation order (isa_kernel_test.cpp: NMSE <= 1e-10,
// ~2e-13 measured for every format).
//
// Files:
//  - neon_common.h: register helpers and the fp32 GEMM driver with its register tile, shared by
//    the two translation units below (same flags, so sharing inline code is safe).
//  - neon_kernels.cpp (this file): plain formats F32 / BF16 / F16 (matmul, decode_row) and the
//    elementwise ops (rmsnorm, rope, softmax, silu_mul, dot, axpy, attention, bench probes).
//  - neon_quant.cpp: block-quantized formats (NVFP4, NVFP4-CT, MXFP4, FP8 tensor / channel /
//    128x128): matmul and decode_row; its file comment describes the decoding (4-bit codes by
//    vqtbl1q lookups, E4M3 by fp16 bit conversion, times the block multiplier exactly as
//    formats::dequantize_row).
//
// Matmul shapes, as in the x86 bodies (x86_avx512/avx512_kernels.cpp):
//  - GEMV (fewer than kGemmMinTokens = 4 tokens, decode): the weights are read once, decoded in
//    registers and multiplied with every token's row (plain formats: four rows at a time).
//  - GEMM (kGemmMinTokens tokens or more: prefill, batches): an 8-row x 8-token register tile
//    (16 accumulators, vfmaq_n_f32 with the weight as the scalar). Per group of 32 tokens and K
//    block of 512 the tokens are transposed into xt[tile][k][8], and 8 weight rows at a time are
//    decoded into wp[8][k] once and used by the group's four tiles (all on the stack, 80 KiB);
//    the weights are never dequantized as a whole.
// Tails go through zero-padded staging buffers (NEON has no masked loads); nothing reads past
// the end of a row.
//
// No std:: templates over vector or float types here (see the AVX-512 file for why).
#include "kernels/arm_neon/neon_kernels.h"

#include <arm_neon.h>

#include <cmath>
#include <cstring>

#include "kernels/arm_neon/neon_common.h"

namespace nibble::kernels::neon {
namespace {

inline float hmax(float32x4_t v) {
  return vmaxvq_f32(v);
}

// e^x as in the x86 bodies: degree-6 polynomial on |r| <= ln2/2, 0 below -87.3.
inline float32x4_t exp_ps(float32x4_t x) {
  const float32x4_t lo = vdupq_n_f32(-87.3f);
  const uint32x4_t underflow = vcltq_f32(x, lo);
  x = vmaxq_f32(vminq_f32(x, vdupq_n_f32(88.7f)), lo);
  const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
  float32x4_t r = vfmsq_n_f32(x, n, 0.693359375f);
  r = vfmsq_n_f32(r, n, -2.12194440e-4f);
  float32x4_t p = vdupq_n_f32(1.0f / 720.0f);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  const int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  const float32x4_t result = vmulq_f32(p, vreinterpretq_f32_s32(bits));
  return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(result), underflow));
}

struct LoadF32 {
  static constexpr int kElemBytes = 4;
  static float32x4_t load(const uint8_t* p) { return vld1q_f32(reinterpret_cast<const float*>(p)); }
};
struct LoadBF16 {
  static constexpr int kElemBytes = 2;
  static float32x4_t load(const uint8_t* p) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p)), 16));
  }
};
struct LoadF16 {
  static constexpr int kElemBytes = 2;
  static float32x4_t load(const uint8_t* p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p))));
  }
};

template <typename L>
float32x4_t load_tail(const uint8_t* p, int64_t num_elems) {
  alignas(16) uint8_t staged[kLanes * 4] = {};
  std::memcpy(staged, p, static_cast<size_t>(num_elems * L::kElemBytes));
  return L::load(staged);
}

template <typename L>
void decode_range(const uint8_t* row, int64_t k0, int64_t num_elems, float* out) {
  const uint8_t* p = row + k0 * L::kElemBytes;
  int64_t k = 0;
  for (; k + kLanes <= num_elems; k += kLanes) vst1q_f32(out + k, L::load(p + k * L::kElemBytes));
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
    float32x4_t acc[kRows];
    for (int r = 0; r < kRows; ++r) acc[r] = vdupq_n_f32(0.0f);
    for (int64_t k = 0; k < k_main; k += kLanes) {
      const float32x4_t xv = vld1q_f32(xm + k);
      for (int r = 0; r < kRows; ++r) acc[r] = vfmaq_f32(acc[r], L::load(rows[r] + k * L::kElemBytes), xv);
    }
    if (k_main < num_cols) {
      const float32x4_t xv = load_tail_f32(xm + k_main, num_cols - k_main);
      for (int r = 0; r < kRows; ++r) {
        acc[r] = vfmaq_f32(acc[r], load_tail<L>(rows[r] + k_main * L::kElemBytes, num_cols - k_main), xv);
      }
    }
    for (int r = 0; r < kRows; ++r) y[m * ldy + n + r] = hsum(acc[r]);
  }
}

// Decodes row n, columns [k0, k0 + num_elems) of a plain-format weight (for gemm()).
template <typename L>
struct PlainDecoder {
  const MatWeight& w;
  void decode(int64_t n, int64_t k0, int64_t num_elems, float* out) const {
    decode_range<L>(w.data + n * w.row_bytes, k0, num_elems, out);
  }
};

template <typename L>
void matmul(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin, int64_t n_end, float* y,
            int64_t ldy) {
  if (num_tokens >= kGemmMinTokens) {
    gemm(PlainDecoder<L>{w}, x, num_tokens, w.num_cols, n_begin, n_end, y, ldy);
    return;
  }
  int64_t n = n_begin;
  for (; n + 4 <= n_end; n += 4) gemv_rows<L, 4>(x, num_tokens, w, n, y, ldy);
  for (; n < n_end; ++n) gemv_rows<L, 1>(x, num_tokens, w, n, y, ldy);
}

float dot(const float* a, const float* b, int64_t n) {
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
    acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + kLanes), vld1q_f32(b + i + kLanes));
  }
  for (; i + kLanes <= n; i += kLanes) acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
  if (i < n) acc1 = vfmaq_f32(acc1, load_tail_f32(a + i, n - i), load_tail_f32(b + i, n - i));
  return hsum(vaddq_f32(acc0, acc1));
}

void axpy(float alpha, const float* x, int64_t n, float* y) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), alpha));
  for (; i < n; ++i) y[i] = __builtin_fmaf(alpha, x[i], y[i]);
}

void rmsnorm(const float* x, const float* weight, int64_t num_rows, int64_t dim, float eps, float* y) {
  for (int64_t r = 0; r < num_rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    const float sum_sq = dot(xr, xr, dim);
    const float inv = 1.0f / __builtin_sqrtf(sum_sq / static_cast<float>(dim) + eps);
    int64_t i = 0;
    for (; i + kLanes <= dim; i += kLanes) {
      vst1q_f32(yr + i, vmulq_f32(vld1q_f32(weight + i), vmulq_n_f32(vld1q_f32(xr + i), inv)));
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
      const float32x4_t x1 = vld1q_f32(x1p + i);
      const float32x4_t x2 = vld1q_f32(x2p + i);
      const float32x4_t c = vld1q_f32(cos + i);
      const float32x4_t s = vld1q_f32(sin + i);
      vst1q_f32(x1p + i, vfmsq_f32(vmulq_f32(x1, c), x2, s));
      vst1q_f32(x2p + i, vfmaq_f32(vmulq_f32(x2, c), x1, s));
    }
    for (; i < half; ++i) {
      const float x1 = x1p[i];
      const float x2 = x2p[i];
      x1p[i] = x1 * cos[i] - x2 * sin[i];
      x2p[i] = x2 * cos[i] + x1 * sin[i];
    }
  }
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float max_val = x[0];
  for (int64_t i = 1; i < n; ++i) max_val = x[i] > max_val ? x[i] : max_val;
  const float32x4_t vmax = vdupq_n_f32(max_val);
  float32x4_t vsum = vdupq_n_f32(0.0f);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const float32x4_t e = exp_ps(vsubq_f32(vld1q_f32(x + i), vmax));
    vst1q_f32(x + i, e);
    vsum = vaddq_f32(vsum, e);
  }
  if (i < n) {
    alignas(16) float staged[kLanes];
    for (int l = 0; l < kLanes; ++l) staged[l] = i + l < n ? x[i + l] - max_val : -INFINITY;
    const float32x4_t e = exp_ps(vld1q_f32(staged));
    store_tail(x + i, e, n - i);
    vsum = vaddq_f32(vsum, e);
  }
  const float inv = 1.0f / hsum(vsum);
  for (i = 0; i + kLanes <= n; i += kLanes) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
  for (; i < n; ++i) x[i] *= inv;
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  int64_t i = 0;
  for (; i < n; i += kLanes) {
    const int64_t len = imin(kLanes, n - i);
    const float32x4_t g = len == kLanes ? vld1q_f32(gate + i) : load_tail_f32(gate + i, len);
    const float32x4_t u = len == kLanes ? vld1q_f32(up + i) : load_tail_f32(up + i, len);
    const float32x4_t s = vdivq_f32(g, vaddq_f32(one, exp_ps(vnegq_f32(g))));
    if (len == kLanes) {
      vst1q_f32(out + i, vmulq_f32(s, u));
    } else {
      store_tail(out + i, vmulq_f32(s, u), len);
    }
  }
}

// Online-softmax attention as in the x86 bodies, keys in blocks of 4.
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
  alignas(16) float scores[kKeyBlock];
  for (int64_t j0 = 0; j0 < max_keys; j0 += kKeyBlock) {
    for (int64_t i = 0; i < num_queries; ++i) {
      const int64_t nk = imin(kKeyBlock, num_keys[i] - j0);
      if (nk <= 0) continue;
      for (int64_t jj = 0; jj < kKeyBlock; ++jj) {
        scores[jj] = jj < nk ? dot(q_rows[i], k_rows[j0 + jj] + kv_offset, head_dim) * scale : -INFINITY;
      }
      const float32x4_t sv = vld1q_f32(scores);
      const float block_max = hmax(sv);
      const float m_new = block_max > m[i] ? block_max : m[i];
      const float corr = m[i] == -INFINITY ? 0.0f : __builtin_expf(m[i] - m_new);
      const float32x4_t p = exp_ps(vsubq_f32(sv, vdupq_n_f32(m_new)));
      vst1q_f32(scores, p);
      l[i] = l[i] * corr + hsum(p);
      m[i] = m_new;
      float* out = out_rows[i];
      int64_t d = 0;
      for (; d + kLanes <= head_dim; d += kLanes) {
        float32x4_t acc = vmulq_n_f32(vld1q_f32(out + d), corr);
        for (int64_t jj = 0; jj < nk; ++jj)
          acc = vfmaq_n_f32(acc, vld1q_f32(v_rows[j0 + jj] + kv_offset + d), scores[jj]);
        vst1q_f32(out + d, acc);
      }
      for (; d < head_dim; ++d) {
        float a = out[d] * corr;
        for (int64_t jj = 0; jj < nk; ++jj) a += scores[jj] * v_rows[j0 + jj][kv_offset + d];
        out[d] = a;
      }
    }
  }
  for (int64_t i = 0; i < num_queries; ++i) {
    const float inv_l = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
    for (int64_t d = 0; d < head_dim; ++d) out_rows[i][d] *= inv_l;
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

double fma_probe(int64_t iters, float* sink) {
  constexpr int kChains = 16;
  float32x4_t acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = vdupq_n_f32(0.001f * static_cast<float>(i));
  const float32x4_t mul = vdupq_n_f32(0.999999f);
  const float32x4_t add = vdupq_n_f32(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = vfmaq_f32(add, acc[i], mul);
  }
  for (int i = 1; i < kChains; ++i) acc[0] = vaddq_f32(acc[0], acc[i]);
  *sink = hsum(acc[0]);
  return static_cast<double>(iters) * kChains * kLanes * 2;
}

float read_probe(const float* x, int64_t n) {
  float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    for (int v = 0; v < 4; ++v) acc[v] = vaddq_f32(acc[v], vld1q_f32(x + i + v * kLanes));
  }
  float sum = hsum(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
  for (; i < n; ++i) sum += x[i];
  return sum;
}

}  // namespace

void register_neon(KernelTable& table) {
  table.matmul[static_cast<int>(WeightFormat::kF32)] = &matmul<LoadF32>;
  table.matmul[static_cast<int>(WeightFormat::kBF16)] = &matmul<LoadBF16>;
  table.matmul[static_cast<int>(WeightFormat::kF16)] = &matmul<LoadF16>;
  table.decode_row[static_cast<int>(WeightFormat::kF32)] = &decode_row<LoadF32>;
  table.decode_row[static_cast<int>(WeightFormat::kBF16)] = &decode_row<LoadBF16>;
  table.decode_row[static_cast<int>(WeightFormat::kF16)] = &decode_row<LoadF16>;
  table.rmsnorm = &rmsnorm;
  table.rope = &rope;
  table.softmax = &softmax;
  table.silu_mul = &silu_mul;
  table.dot = &dot;
  table.axpy = &axpy;
  table.attention = &attention;
  table.fma_probe = &fma_probe;
  table.read_probe = &read_probe;
  register_neon_quant(table);
}

}  // namespace nibble::kernels::neon
