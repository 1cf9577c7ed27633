// The rows: scale codecs, producers' scale rules, and the block formats that use them.
// Every number here is from ../shared/docs/formats.md and the producers' sources it cites
// (ModelOpt 0.47 nvfp4_tensor.py / mxfp4_tensor.py / fp8_tensor.py, compressed-tensors 0.20
// helpers.py / mxfp_utils.py / forward_helpers.py); docs/formats.md gives the reasons.
#include <cfloat>
#include <cmath>
#include <cstring>

#include "base/float16.h"
#include "formats/block_format.h"

namespace nibble::formats {
namespace {

// ---- scale codecs ----

float e4m3_code_value(uint32_t code) {
  return e4m3_decode(static_cast<uint8_t>(code));
}
float e8m0_code_value(uint32_t code) {
  return e8m0_decode(static_cast<uint8_t>(code));
}
float f32_code_value(uint32_t code) {
  float f;
  std::memcpy(&f, &code, sizeof(f));
  return f;
}
uint32_t f32_code(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}
uint32_t load_u8(const uint8_t* src) {
  return *src;
}
void store_u8(uint32_t code, uint8_t* dst) {
  *dst = static_cast<uint8_t>(code);
}
uint32_t load_u32le(const uint8_t* src) {
  return static_cast<uint32_t>(src[0]) | (static_cast<uint32_t>(src[1]) << 8) |
         (static_cast<uint32_t>(src[2]) << 16) | (static_cast<uint32_t>(src[3]) << 24);
}
void store_u32le(uint32_t code, uint8_t* dst) {
  for (int i = 0; i < 4; ++i) dst[i] = static_cast<uint8_t>(code >> (8 * i));
}

// Exponent e of a positive finite float: a = m * 2^e with m in [1, 2) (subnormals included).
int floor_log2(float a) {
  int frexp_exp = 0;
  std::frexp(a, &frexp_exp);
  return frexp_exp - 1;
}

// ---- NVFP4, ModelOpt (nvfp4_tensor.py: get_weights_scaling_factor[_2], quantize) ----

float nvfp4_mo_tensor_scale(float tensor_amax) {
  // An all-zero tensor would give S2 = 0 and NaN block scales in ModelOpt; nibble quantizes it as
  // if amax were 1 so the stored S2 stays positive (every element still encodes to 0).
  if (!(tensor_amax > 0.0f)) tensor_amax = 1.0f;
  return tensor_amax / (6.0f * 448.0f);
}
uint32_t nvfp4_mo_block_code(float block_amax, float s2) {
  float s = block_amax / (6.0f * s2);
  if (s == 0.0f) s = 1.0f;
  // ModelOpt >= 0.4x clamps to [2^-9, 448] before the cast (older versions could round to 0).
  if (!(s >= 0x1p-9f)) s = std::isnan(s) ? s : 0x1p-9f;
  if (s > 448.0f) s = 448.0f;
  return e4m3_encode(s, Overflow::kSaturate);
}
float mul_scales(float block_scale, float tensor_scale) {
  return block_scale * tensor_scale;
}

// ---- NVFP4, compressed-tensors (generate_gparam, calculate_qparams, _quantize) ----

float nvfp4_ct_tensor_scale(float tensor_amax) {
  const float amax = tensor_amax < FLT_MIN ? FLT_MIN : tensor_amax;
  // `2688.0 / tensor` in torch is reciprocal(tensor) * 2688 (Tensor.__rtruediv__): two roundings.
  const float g = (1.0f / amax) * 2688.0f;
  return std::isfinite(g) ? g : 1.0f;  // torch.nan_to_num(posinf=1.0)
}
uint32_t nvfp4_ct_block_code(float block_amax, float g) {
  const float s = g * (block_amax / 6.0f);
  const uint8_t code = e4m3_encode(s, Overflow::kSaturate);  // clamp(±448) then cast
  return (code & 0x7F) == 0 ? 0x20u : code;                  // exact zero → eps 0.125 (E4M3 code 0x20)
}
float div_scales(float block_scale, float tensor_scale) {
  return block_scale / tensor_scale;
}

// The same with a BF16 weight, as llm-compressor runs it on a BF16 checkpoint: the observer's
// min/max stay BF16, so G = bf16(bf16(1/amax) * 2688) and blk_amax/6 is rounded to BF16 before
// the float32 multiply by G (verified against compressed-tensors 0.20.1 by the bf16 goldens).
float round_bf16(float x) {
  return base::bf16_to_float(base::float_to_bf16(x));
}
float nvfp4_ct_bf16_tensor_scale(float tensor_amax) {
  const float amax = tensor_amax < FLT_MIN ? FLT_MIN : tensor_amax;
  const float g = round_bf16(round_bf16(1.0f / amax) * 2688.0f);
  return std::isfinite(g) ? g : 1.0f;
}
uint32_t nvfp4_ct_bf16_block_code(float block_amax, float g) {
  const float s = g * round_bf16(block_amax / 6.0f);
  const uint8_t code = e4m3_encode(s, Overflow::kSaturate);
  return (code & 0x7F) == 0 ? 0x20u : code;
}

// ---- MXFP4 ----

float e8m0_divisor(float block_scale, float /*tensor_scale*/) {
  return block_scale;
}

// OCP MX v1.0 / llama.cpp quantize_row_mxfp4_ref: X = 2^(floor(log2 A) - emax), emax(E2M1) = 2.
uint32_t mxfp4_ocp_block_code(float block_amax, float /*tensor_scale*/) {
  if (!(block_amax > 0.0f)) return 0;
  return e8m0_from_exponent(floor_log2(block_amax) - 2);
}

// ModelOpt MXFP4QTensor.quantize: e = ceil(max(log2(A / 6), -127)); exact ceil of log2.
uint32_t mxfp4_mo_block_code(float block_amax, float /*tensor_scale*/) {
  const float descale = block_amax / 6.0f;
  if (!(descale > 0.0f)) return 0;
  int e = floor_log2(descale);
  if (std::ldexp(1.0f, e) != descale) ++e;  // not a power of two: round up
  return e8m0_from_exponent(e);
}

// compressed-tensors generate_mx_scales: round A to a power of two (the mantissa rounds up from
// 1.75, i.e. add 2^21 to the float32 bits and keep sign+exponent), then 127 + log2 - 2.
uint32_t mxfp4_ct_block_code(float block_amax, float /*tensor_scale*/) {
  uint32_t bits;
  std::memcpy(&bits, &block_amax, sizeof(bits));
  const uint32_t exp_field = ((bits + (1u << 21)) >> 23) & 0xFFu;
  if (exp_field == 0) return 0;  // zero or subnormal: log2(0) = -inf, clamped to code 0
  int code = static_cast<int>(exp_field) - 2;
  if (code < 0) code = 0;
  if (code > 0xFE) code = 0xFE;
  return static_cast<uint32_t>(code);
}

// ---- FP8 ----

float fp8_no_tensor_scale(float /*tensor_amax*/) {
  return 1.0f;
}
// ModelOpt FP8QTensor.quantize / DeepSeek: scale = amax / 448, stored as F32; an all-zero block
// gets 1.0 (ModelOpt would divide 0 by 0).
uint32_t fp8_amax_block_code(float block_amax, float /*tensor_scale*/) {
  const float s = block_amax / 448.0f;
  return f32_code(s > 0.0f ? s : 1.0f);
}
// compressed-tensors: the same, but an exact zero scale becomes float32 eps.
uint32_t fp8_ct_block_code(float block_amax, float /*tensor_scale*/) {
  const float s = block_amax / 448.0f;
  return f32_code(s > 0.0f ? s : FLT_EPSILON);
}
float fp8_divisor(float block_scale, float /*tensor_scale*/) {
  return block_scale;
}
float fp8_multiplier(float block_scale, float /*tensor_scale*/) {
  return block_scale;
}
uint8_t e4m3_saturating(float x) {
  return e4m3_encode(x, Overflow::kSaturate);
}

const ScaleRule kNvfp4Rules[] = {
    {"modelopt", "ModelOpt: S2 = amax/2688, s = blk_amax/(6*S2), 0 -> 1.0, clamp [2^-9, 448], RNE",
     nvfp4_mo_tensor_scale, nvfp4_mo_block_code, mul_scales, e2m1_encode_rne},
};
const ScaleRule kNvfp4CtRules[] = {
    {"compressed-tensors",
     "compressed-tensors: G = 2688/amax, s = G*(blk_amax/6), 0 -> 0.125, x/(s/G), RNE elements",
     nvfp4_ct_tensor_scale, nvfp4_ct_block_code, div_scales, e2m1_encode_rne},
    {"compressed-tensors-bf16",
     "compressed-tensors on a BF16 weight: G and blk_amax/6 rounded to BF16 (observer dtype)",
     nvfp4_ct_bf16_tensor_scale, nvfp4_ct_bf16_block_code, div_scales, e2m1_encode_rne},
};
const ScaleRule kMxfp4Rules[] = {
    {"compressed-tensors",
     "floor(log2(A rounded to a power of 2 from mantissa 1.75)) - 2; RNE elements (nibble default)", nullptr,
     mxfp4_ct_block_code, e8m0_divisor, e2m1_encode_rne},
    {"ocp", "OCP MX / llama.cpp scale floor(log2 A) - 2; RNE saturating elements", nullptr,
     mxfp4_ocp_block_code, e8m0_divisor, e2m1_encode_rne},
    {"modelopt", "ModelOpt: ceil(log2(A/6)); elements ties toward zero, 0 -> code 8", nullptr,
     mxfp4_mo_block_code, e8m0_divisor, e2m1_encode_ties_to_zero},
    {"llama.cpp", "llama.cpp quantize_row_mxfp4_ref: floor(log2 A) - 2; nearest value, lowest code on ties",
     nullptr, mxfp4_ocp_block_code, e8m0_divisor, e2m1_encode_nearest_lowest_code},
};
const ScaleRule kFp8Rules[] = {
    {"modelopt", "ModelOpt / DeepSeek: scale = amax/448 (F32), 0 -> 1.0, saturating RNE", fp8_no_tensor_scale,
     fp8_amax_block_code, fp8_divisor, e4m3_saturating},
    {"compressed-tensors", "compressed-tensors: scale = amax/448, 0 -> float32 eps", fp8_no_tensor_scale,
     fp8_ct_block_code, fp8_divisor, e4m3_saturating},
};

const BlockFormat kFormats[] = {
    {"nvfp4", "NVFP4, ModelOpt layout: E2M1 x16 + E4M3 block scale + F32 S2 (multiplier)", 1, 16, &kE2M1Codec,
     &kScaleE4M3, true, true, mul_scales, kNvfp4Rules},
    {"nvfp4-ct", "NVFP4, compressed-tensors layout: as nvfp4 but the F32 global scale is inverted", 1, 16,
     &kE2M1Codec, &kScaleE4M3, true, true, div_scales, kNvfp4CtRules},
    {"mxfp4", "MXFP4 (OCP MX, gpt-oss layout): E2M1 x32 + E8M0 block scale", 1, 32, &kE2M1Codec, &kScaleE8M0,
     false, true, e8m0_divisor, kMxfp4Rules},
    {"fp8", "FP8 E4M3 with one F32 per-tensor scale (dequant multiplier)", kWholeDim, kWholeDim, &kE4M3Codec,
     &kScaleF32, false, false, fp8_multiplier, kFp8Rules},
    {"fp8-channel", "FP8 E4M3 with one F32 scale per output row", 1, kWholeDim, &kE4M3Codec, &kScaleF32,
     false, false, fp8_multiplier, kFp8Rules},
    {"fp8-block", "FP8 E4M3 with F32 128x128 block scales (DeepSeek weight_scale_inv)", 128, 128, &kE4M3Codec,
     &kScaleF32, false, false, fp8_multiplier, kFp8Rules},
};

}  // namespace

// E4M3 scales: codes 0x01 (2^-9) .. 0x7E (448); MSE window: 8 codes (about a factor 2) below and
// 2 above the max-rule code. E8M0: one code (a factor 2) each way. F32: no search window.
const ScaleCodec kScaleE4M3{"e4m3", 1, 0x01, 0x7E, e4m3_code_value, load_u8, store_u8, 8, 2};
const ScaleCodec kScaleE8M0{"e8m0", 1, 0x00, 0xFE, e8m0_code_value, load_u8, store_u8, 1, 1};
const ScaleCodec kScaleF32{"f32", 4, 0x00000001, 0x7F7FFFFF, f32_code_value, load_u32le, store_u32le, 0, 0};

std::span<const BlockFormat> block_formats() {
  return kFormats;
}

const BlockFormat* find_block_format(std::string_view name) {
  for (const BlockFormat& format : kFormats) {
    if (format.name == name) return &format;
  }
  return nullptr;
}

const ScaleRule* find_scale_rule(const BlockFormat& format, std::string_view rule_name) {
  for (const ScaleRule& rule : format.rules) {
    if (rule.name == rule_name) return &rule;
  }
  return nullptr;
}

}  // namespace nibble::formats
