// NEON bodies for the block-quantized formats (NVFP4, NVFP4-CT, MXFP4, FP8 with tensor / channel /
// 128x128 scales). The formats are read from their formats row as data; activations stay fp32.
//
// Decoding works on chunks of 16 columns (four q registers). Every block size (16, 32, 128) is a
// multiple of 16 and a whole-row block covers the row, so one chunk has one block multiplier.
//  - 4-bit codes (E2M1): 8 bytes split into low / high nibbles and zipped back into element
//    order (element 2j is the low nibble of byte j), then looked up with vqtbl1q_u8 in two
//    16-byte tables, the low and high bytes of the fp16 value of each code; zipping the two
//    byte planes gives 16 fp16 values, widened exactly to fp32 with fcvtl. The tables are built
//    from the element codec (every E2M1 value is exact in fp16), so the values are the codec's
//    own, bit for bit. A 4-bit codec with a value fp16 cannot hold keeps the reference body.
//  - 8-bit codes (E4M3): by bit conversion. Magnitude bits << 7 with the sign in bit 15 are an
//    fp16 whose value is 2^-8 times the E4M3 value (exponent bias 7 against 15; E4M3 subnormals
//    land on fp16 subnormals with the same factor), widened with fcvtl and multiplied by 256,
//    both exact. The NaN codes (0x7F, 0xFF) have no such fp16: a chunk holding one is decoded
//    through the 256-entry table of the codec instead. The conversion is checked against the
//    codec for every code once; an 8-bit codec it does not reproduce always uses the table.
// Each decoded value is then multiplied by the block's multiplier(scale, tensor_scale), exactly
// as formats::dequantize_row computes it, so decode_row is bit-identical to the reference and the
// matmuls differ from it by summation order only.
//
// Matmul shapes:
//  - GEMV (fewer than kGemmMinTokens tokens, decode): one pass over each weight row, decoded in
//    registers and multiplied into up to 3 tokens at once (4 accumulators per token).
//  - GEMM: rows decoded to fp32 one K block at a time into the GEMM driver's panel (once per 32
//    tokens), then the shared fp32 8 x 8 register tile (neon_common.h).
#include <arm_neon.h>

#include <cstring>

#include "base/float16.h"
#include "base/status.h"
#include "formats/block_format.h"
#include "kernels/arm_neon/neon_common.h"

namespace nibble::kernels::neon {
namespace {

constexpr int64_t kChunk = 16;  // columns decoded at once
constexpr int kMaxGemvTokens = 3;

// E4M3 codes -> 4 x 4 fp32 by bit conversion (see the file comment); wrong for 0x7F / 0xFF.
inline void e4m3_bits_to_f32(uint8x16_t codes, float32x4_t out[4]) {
  const uint8x16_t mag = vandq_u8(codes, vdupq_n_u8(0x7F));
  const uint8x16_t sign = vandq_u8(codes, vdupq_n_u8(0x80));
  const uint16x8_t lo = vorrq_u16(vshll_n_u8(vget_low_u8(mag), 7), vshll_n_u8(vget_low_u8(sign), 8));
  const uint16x8_t hi = vorrq_u16(vshll_high_n_u8(mag, 7), vshll_high_n_u8(sign, 8));
  const float32x4_t k256 = vdupq_n_f32(256.0f);
  out[0] = vmulq_f32(vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(lo))), k256);
  out[1] = vmulq_f32(vcvt_high_f32_f16(vreinterpretq_f16_u16(lo)), k256);
  out[2] = vmulq_f32(vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(hi))), k256);
  out[3] = vmulq_f32(vcvt_high_f32_f16(vreinterpretq_f16_u16(hi)), k256);
}

// Per weight format, computed once: the element value of every code, the 4-bit codes' fp16
// values as two byte planes, the scale value of every 1-byte scale code, and whether
// e4m3_bits_to_f32 reproduces the element codec.
struct FormatTables {
  alignas(16) float elem[256] = {};
  alignas(16) uint8_t half_plane[2][16] = {};  // byte b of the fp16 value of each 4-bit code
  bool f16_exact = false;                      // every 4-bit code's value is exact in fp16
  float scale[256] = {};
  bool fp8_bits = false;
};

struct AllTables {
  FormatTables of[kNumWeightFormats];
  AllTables() {
    for (int f = 0; f < kNumWeightFormats; ++f) {
      const formats::BlockFormat* bf = block_format_of(static_cast<WeightFormat>(f));
      if (bf == nullptr) continue;
      FormatTables& t = of[f];
      const int num_codes = bf->element->bits == 4 ? 16 : 256;
      for (int c = 0; c < num_codes; ++c) t.elem[c] = bf->element->decode(static_cast<uint8_t>(c));
      t.f16_exact = bf->element->bits == 4;
      for (int c = 0; c < 16; ++c) {
        uint32_t bits;
        std::memcpy(&bits, &t.elem[c], 4);
        const uint16_t half = base::float_to_f16(t.elem[c]);
        t.half_plane[0][c] = static_cast<uint8_t>(half & 0xFF);
        t.half_plane[1][c] = static_cast<uint8_t>(half >> 8);
        if (base::float_bits(base::f16_to_float(half)) != bits) t.f16_exact = false;
      }
      if (bf->scale->bytes == 1) {
        for (int c = 0; c < 256; ++c) t.scale[c] = bf->scale->value(static_cast<uint32_t>(c));
      }
      if (bf->element->bits == 8) {
        t.fp8_bits = true;
        for (int c0 = 0; c0 < 256; c0 += 16) {
          alignas(16) uint8_t codes[16];
          for (int i = 0; i < 16; ++i) codes[i] = static_cast<uint8_t>(c0 + i);
          float32x4_t v[4];
          e4m3_bits_to_f32(vld1q_u8(codes), v);
          alignas(16) float got[16];
          for (int i = 0; i < 4; ++i) vst1q_f32(got + 4 * i, v[i]);
          for (int i = 0; i < 16; ++i) {
            if ((codes[i] & 0x7F) != 0x7F && std::memcmp(&got[i], &t.elem[c0 + i], 4) != 0)
              t.fp8_bits = false;
          }
        }
      }
    }
  }
};

const FormatTables& tables_of(WeightFormat format) {
  static const AllTables tables;
  return tables.of[static_cast<int>(format)];
}

enum class CodeKind {
  kFourBit,    // 4-bit codes through the fp16 tables
  kFp8Bits,    // E4M3 by bit conversion
  kByteTable,  // 8-bit codes through the 256-entry table
};

CodeKind code_kind(WeightFormat format) {
  if (block_format_of(format)->element->bits == 4) return CodeKind::kFourBit;
  return tables_of(format).fp8_bits ? CodeKind::kFp8Bits : CodeKind::kByteTable;
}

template <CodeKind kKind>
class QuantDecoder {
 public:
  explicit QuantDecoder(const MatWeight& w)
      : w_(w), format_(*block_format_of(w.format)), tables_(tables_of(w.format)) {
    tile_cols_ = format_.block_cols == formats::kWholeDim ? w.num_cols : format_.block_cols;
    if (tile_cols_ <= 0) tile_cols_ = kChunk;  // an empty row: no block, and no division by 0
    NIBBLE_CHECK(tile_cols_ % kChunk == 0 || tile_cols_ >= w.num_cols,
                 "NEON decode needs blocks of a multiple of 16 columns");
    scale_bytes_ = format_.scale->bytes;
    if (scale_bytes_ == 1) {
      for (int c = 0; c < 256; ++c) scale_lut_[c] = format_.multiplier(tables_.scale[c], w.tensor_scale);
    }
    for (int b = 0; b < 2; ++b) half_plane_[b] = vld1q_u8(tables_.half_plane[b]);
  }

  int64_t tile_cols() const { return tile_cols_; }
  const uint8_t* row(int64_t n) const { return w_.data + n * w_.row_bytes; }
  const uint8_t* scale_row(int64_t n) const {
    return w_.block_scales + (n / w_.scale_tile_rows) * w_.scale_row_bytes;
  }

  float multiplier(const uint8_t* scales, int64_t block_idx) const {
    if (scale_bytes_ == 1) return scale_lut_[scales[block_idx]];
    const uint32_t code = format_.scale->load(scales + block_idx * scale_bytes_);
    return format_.multiplier(format_.scale->value(code), w_.tensor_scale);
  }

  // Element values (before the multiplier) of columns [k, k + 16) of a row; k % 16 == 0.
  void load(const uint8_t* row_data, int64_t k, float32x4_t v[4]) const {
    if constexpr (kKind == CodeKind::kFourBit) {
      values(vld1_u8(row_data + k / 2), v);
    } else {
      values(vld1q_u8(row_data + k), v);
    }
  }

  // The same for the last num_elems (< 16) columns of a row, never reading past them.
  void load_tail(const uint8_t* row_data, int64_t k, int64_t num_elems, float32x4_t v[4]) const {
    alignas(16) uint8_t staged[kChunk] = {};
    if constexpr (kKind == CodeKind::kFourBit) {
      std::memcpy(staged, row_data + k / 2, static_cast<size_t>((num_elems + 1) / 2));
      values(vld1_u8(staged), v);
    } else {
      std::memcpy(staged, row_data + k, static_cast<size_t>(num_elems));
      values(vld1q_u8(staged), v);
    }
  }

  // out[0, num_elems) = W[n, k0 .. k0 + num_elems) in fp32; k0 % 16 == 0.
  void decode(int64_t n, int64_t k0, int64_t num_elems, float* out) const {
    const uint8_t* row_data = row(n);
    const uint8_t* scales = scale_row(n);
    const int64_t k_end = k0 + num_elems;
    // The block index advances by comparison, not a division per chunk.
    int64_t block = k0 / tile_cols_;
    int64_t block_end = (block + 1) * tile_cols_;
    float32x4_t mult = vdupq_n_f32(multiplier(scales, block));
    for (int64_t k = k0; k < k_end; k += kChunk) {
      if (k >= block_end) {
        ++block;
        block_end += tile_cols_;
        mult = vdupq_n_f32(multiplier(scales, block));
      }
      const int64_t count = imin(kChunk, k_end - k);
      float32x4_t v[4];
      if (count == kChunk) {
        load(row_data, k, v);
        for (int i = 0; i < 4; ++i) vst1q_f32(out + (k - k0) + 4 * i, vmulq_f32(v[i], mult));
      } else {
        load_tail(row_data, k, count, v);
        alignas(16) float staged[kChunk];
        for (int i = 0; i < 4; ++i) vst1q_f32(staged + 4 * i, vmulq_f32(v[i], mult));
        std::memcpy(out + (k - k0), staged, static_cast<size_t>(count) * sizeof(float));
      }
    }
  }

 private:
  // 4-bit: 8 bytes -> 16 codes in element order -> fp16 values through the byte-plane tables.
  void values(uint8x8_t bytes, float32x4_t v[4]) const {
    const uint8x8_t low = vand_u8(bytes, vdup_n_u8(0x0F));
    const uint8x8_t high = vshr_n_u8(bytes, 4);
    const uint8x16_t codes = vcombine_u8(vzip1_u8(low, high), vzip2_u8(low, high));
    const uint8x16_t lo = vqtbl1q_u8(half_plane_[0], codes);
    const uint8x16_t hi = vqtbl1q_u8(half_plane_[1], codes);
    const float16x8_t h0 = vreinterpretq_f16_u8(vzip1q_u8(lo, hi));  // elements 0..7
    const float16x8_t h1 = vreinterpretq_f16_u8(vzip2q_u8(lo, hi));  // elements 8..15
    v[0] = vcvt_f32_f16(vget_low_f16(h0));
    v[1] = vcvt_high_f32_f16(h0);
    v[2] = vcvt_f32_f16(vget_low_f16(h1));
    v[3] = vcvt_high_f32_f16(h1);
  }

  // 8-bit: 16 codes -> values, by bit conversion when it is exact, else through the table.
  void values(uint8x16_t codes, float32x4_t v[4]) const {
    if constexpr (kKind == CodeKind::kFp8Bits) {
      const uint8x16_t is_nan = vceqq_u8(vandq_u8(codes, vdupq_n_u8(0x7F)), vdupq_n_u8(0x7F));
      if (vmaxvq_u8(is_nan) == 0) {
        e4m3_bits_to_f32(codes, v);
        return;
      }
    }
    alignas(16) uint8_t c[kChunk];
    alignas(16) float f[kChunk];
    vst1q_u8(c, codes);
    for (int i = 0; i < kChunk; ++i) f[i] = tables_.elem[c[i]];
    for (int i = 0; i < 4; ++i) v[i] = vld1q_f32(f + 4 * i);
  }

  const MatWeight& w_;
  const formats::BlockFormat& format_;
  const FormatTables& tables_;
  uint8x16_t half_plane_[2];
  float scale_lut_[256] = {};
  int64_t tile_cols_ = 1;
  int scale_bytes_ = 1;
};

// y[m, n] for kTokens tokens and every row in [n_begin, n_end): each row is decoded once, in
// registers, 16 columns at a time, and multiplied into every token's row of x.
template <CodeKind kKind, int kTokens>
void gemv(const QuantDecoder<kKind>& d, const float* x, int64_t num_cols, int64_t n_begin, int64_t n_end,
          float* y, int64_t ldy) {
  const int64_t k_main = num_cols & ~(kChunk - 1);
  const int64_t tile_cols = d.tile_cols();
  for (int64_t n = n_begin; n < n_end; ++n) {
    const uint8_t* row_data = d.row(n);
    const uint8_t* scales = d.scale_row(n);
    float32x4_t acc[kTokens][4];
    for (int t = 0; t < kTokens; ++t) {
      for (int i = 0; i < 4; ++i) acc[t][i] = vdupq_n_f32(0.0f);
    }
    int64_t block = 0;
    int64_t block_end = tile_cols;
    float32x4_t mult = vdupq_n_f32(d.multiplier(scales, 0));
    for (int64_t k = 0; k < k_main; k += kChunk) {
      if (k >= block_end) {
        ++block;
        block_end += tile_cols;
        mult = vdupq_n_f32(d.multiplier(scales, block));
      }
      float32x4_t v[4];
      d.load(row_data, k, v);
      for (int i = 0; i < 4; ++i) v[i] = vmulq_f32(v[i], mult);
      for (int t = 0; t < kTokens; ++t) {
        const float* xk = x + t * num_cols + k;
        for (int i = 0; i < 4; ++i) acc[t][i] = vfmaq_f32(acc[t][i], v[i], vld1q_f32(xk + 4 * i));
      }
    }
    if (k_main < num_cols) {
      const int64_t count = num_cols - k_main;
      alignas(16) float wt[kChunk] = {};
      d.decode(n, k_main, count, wt);
      for (int t = 0; t < kTokens; ++t) {
        alignas(16) float xs[kChunk] = {};
        std::memcpy(xs, x + t * num_cols + k_main, static_cast<size_t>(count) * sizeof(float));
        for (int i = 0; i < 4; ++i)
          acc[t][i] = vfmaq_f32(acc[t][i], vld1q_f32(wt + 4 * i), vld1q_f32(xs + 4 * i));
      }
    }
    for (int t = 0; t < kTokens; ++t) {
      y[t * ldy + n] = hsum(vaddq_f32(vaddq_f32(acc[t][0], acc[t][1]), vaddq_f32(acc[t][2], acc[t][3])));
    }
  }
}

template <CodeKind kKind>
void matmul_kind(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin, int64_t n_end,
                 float* y, int64_t ldy) {
  const QuantDecoder<kKind> decoder(w);
  if (num_tokens >= kGemmMinTokens) {
    gemm(decoder, x, num_tokens, w.num_cols, n_begin, n_end, y, ldy);
    return;
  }
  for (int64_t m0 = 0; m0 < num_tokens; m0 += kMaxGemvTokens) {
    const float* xm = x + m0 * w.num_cols;
    float* ym = y + m0 * ldy;
    switch (imin(kMaxGemvTokens, num_tokens - m0)) {
      case 1:
        gemv<kKind, 1>(decoder, xm, w.num_cols, n_begin, n_end, ym, ldy);
        break;
      case 2:
        gemv<kKind, 2>(decoder, xm, w.num_cols, n_begin, n_end, ym, ldy);
        break;
      default:
        gemv<kKind, 3>(decoder, xm, w.num_cols, n_begin, n_end, ym, ldy);
        break;
    }
  }
}

void matmul_quant(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin, int64_t n_end,
                  float* y, int64_t ldy) {
  switch (code_kind(w.format)) {
    case CodeKind::kFourBit:
      matmul_kind<CodeKind::kFourBit>(x, num_tokens, w, n_begin, n_end, y, ldy);
      break;
    case CodeKind::kFp8Bits:
      matmul_kind<CodeKind::kFp8Bits>(x, num_tokens, w, n_begin, n_end, y, ldy);
      break;
    case CodeKind::kByteTable:
      matmul_kind<CodeKind::kByteTable>(x, num_tokens, w, n_begin, n_end, y, ldy);
      break;
  }
}

void decode_row_quant(const MatWeight& w, int64_t row, float* out) {
  switch (code_kind(w.format)) {
    case CodeKind::kFourBit:
      QuantDecoder<CodeKind::kFourBit>(w).decode(row, 0, w.num_cols, out);
      break;
    case CodeKind::kFp8Bits:
      QuantDecoder<CodeKind::kFp8Bits>(w).decode(row, 0, w.num_cols, out);
      break;
    case CodeKind::kByteTable:
      QuantDecoder<CodeKind::kByteTable>(w).decode(row, 0, w.num_cols, out);
      break;
  }
}

}  // namespace

void register_neon_quant(KernelTable& table) {
  for (int f = 0; f < kNumWeightFormats; ++f) {
    const formats::BlockFormat* bf = block_format_of(static_cast<WeightFormat>(f));
    if (bf == nullptr || (bf->element->bits != 4 && bf->element->bits != 8)) continue;
    if (bf->element->bits == 4 && !tables_of(static_cast<WeightFormat>(f)).f16_exact) continue;
    table.matmul[f] = &matmul_quant;
    table.decode_row[f] = &decode_row_quant;
  }
}

}  // namespace nibble::kernels::neon
