// Block-scaled formats as data: NVFP4 (ModelOpt and compressed-tensors), MXFP4, FP8 with
// per-tensor / per-channel / 128x128 block scales.
//
// A format row says how a 2-D tensor [rows, cols] is stored: element codes (packed two per byte
// for 4-bit codecs, element 2j in the low nibble of byte j), one block scale per
// block_rows x block_cols tile, and an optional FP32 per-tensor scale. A scale rule row says how a
// producer chooses those scales and rounds the elements; the same format has several rules
// (ModelOpt, compressed-tensors, OCP, ...). Generic code only reads these rows, it never looks at a
// format's name.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "formats/element.h"

namespace nibble::formats {

// block_rows / block_cols value meaning "the whole dimension".
inline constexpr int kWholeDim = 0;

// How block scales are stored. Codes are integers ordered like the (positive) values they encode,
// so a search can step from one candidate scale to the next by adding 1 to the code.
struct ScaleCodec {
  std::string_view name;  // "e4m3", "e8m0", "f32"
  int bytes;              // bytes per stored scale
  uint32_t min_code;      // smallest positive finite code (candidates for a scale search)
  uint32_t max_code;      // largest finite code
  float (*value)(uint32_t code);
  uint32_t (*load)(const uint8_t* src);        // reads one stored scale (little-endian)
  void (*store)(uint32_t code, uint8_t* dst);  // writes one stored scale
  int mse_codes_below;                         // default MSE search window below the max-rule code
  int mse_codes_above;                         // ... and above it
};

extern const ScaleCodec kScaleE4M3;
extern const ScaleCodec kScaleE8M0;
extern const ScaleCodec kScaleF32;

// A producer's way of choosing scales and rounding elements for one format.
struct ScaleRule {
  std::string_view name;  // "modelopt", "compressed-tensors", "ocp", "llama.cpp", ...
  std::string_view description;
  // Per-tensor scale as stored in the checkpoint, from the tensor's max |x|; nullptr when the
  // format has none.
  float (*tensor_scale)(float tensor_amax);
  // Block-scale code for a block with max |x| = block_amax (block_amax >= 0, finite).
  uint32_t (*block_code)(float block_amax, float tensor_scale);
  // Quantization divides each element by divisor(block scale value, tensor scale).
  float (*divisor)(float block_scale, float tensor_scale);
  // Element rounding (sign, ties, saturation) of this producer.
  uint8_t (*encode_element)(float scaled);
};

// Byte order of 4-bit codes inside a block of packed elements.
enum class NibbleOrder {
  kPairs,   // byte j = element 2j (low nibble) | element 2j+1 (high): ModelOpt, CT, gpt-oss
  kHalves,  // byte j = element j (low) | element j + block/2 (high): llama.cpp MXFP4 / NVFP4
};

struct BlockFormat {
  std::string_view name;  // "nvfp4", "nvfp4-ct", "mxfp4", "fp8", "fp8-channel", "fp8-block"
  std::string_view description;
  int block_rows;  // rows sharing one block scale (1, 128 or kWholeDim)
  int block_cols;  // columns sharing one block scale (16, 32, 128 or kWholeDim)
  const ElementCodec* element;
  const ScaleCodec* scale;
  bool has_tensor_scale;  // an FP32 per-tensor scale next to the block scales
  // Stored data rows are padded with zero elements to a multiple of block_cols (ModelOpt's
  // reduce_block_padding for packed 4-bit formats); otherwise data rows hold exactly cols elements.
  bool pad_data_to_block;
  // Dequantization multiplier for a block: element value * multiplier.
  float (*multiplier)(float block_scale, float tensor_scale);
  std::span<const ScaleRule> rules;  // rules[0] is nibble's default writer rule
};

// All block formats.
std::span<const BlockFormat> block_formats();
const BlockFormat* find_block_format(std::string_view name);
const ScaleRule* find_scale_rule(const BlockFormat& format, std::string_view rule_name);

// Stored bytes of packed elements for one 1 x block_cols block row (0 when block_cols is whole-dim).
int block_bytes(const BlockFormat& format);

// Shapes of the stored tensors for a [rows, cols] tensor.
struct TensorLayout {
  int64_t rows = 0;
  int64_t cols = 0;        // logical columns
  int64_t data_cols = 0;   // stored elements per row (cols, or padded to the block)
  int64_t row_bytes = 0;   // stored bytes per data row
  int64_t scale_rows = 0;  // block-scale tensor shape [scale_rows, scale_cols]
  int64_t scale_cols = 0;
  int64_t tile_rows = 0;  // block size with whole-dim resolved: rows per scale
  int64_t tile_cols = 0;  // columns per scale
  int64_t data_bytes() const { return rows * row_bytes; }
  int64_t num_scales() const { return scale_rows * scale_cols; }
};
base::Result<TensorLayout> tensor_layout(const BlockFormat& format, int64_t rows, int64_t cols);

// How a block scale is chosen.
enum class ScaleSearch {
  kMax,  // the rule's own choice from the block's max |x|
  kMse,  // the code minimising the block's squared reconstruction error, among the rule's choice
         // and its neighbours (never worse than kMax on any block)
};

struct QuantizeOptions {
  const ScaleRule* rule = nullptr;  // nullptr: format.rules[0]
  ScaleSearch search = ScaleSearch::kMax;
  int mse_codes_below = -1;  // < 0: the scale codec's default window
  int mse_codes_above = -1;
  // Per-tensor amax to derive the tensor scale from, e.g. the max over fused q/k/v shards;
  // < 0: the tensor's own max |x|. Ignored by formats without a tensor scale.
  float tensor_amax = -1.0f;
  // Per-tensor scale as stored, overriding tensor_amax (for a searched tensor scale); < 0: unset.
  float tensor_scale = -1.0f;
};

// A quantized 2-D tensor as it is stored in a checkpoint.
struct QuantizedTensor {
  TensorLayout layout;
  std::vector<uint8_t> data;    // [rows, row_bytes]
  std::vector<uint8_t> scales;  // [scale_rows, scale_cols] x scale->bytes
  float tensor_scale = 1.0f;    // as stored (ModelOpt S2 = amax/2688, CT G = 2688/amax); 1 if none
};

// Quantizes x [rows, cols] (row-major). Errors on NaN/Inf input (naming row and column), on a
// format whose 4-bit rows cannot be packed (odd stored columns) and on empty shapes.
base::Result<QuantizedTensor> quantize_tensor(const BlockFormat& format, std::span<const float> x,
                                              int64_t rows, int64_t cols,
                                              const QuantizeOptions& options = {});

// The two halves of quantize_tensor, for callers that split a tensor across threads:
// prepare_quantized_tensor validates x, sizes the buffers and sets the tensor scale;
// quantize_rows fills rows [row_begin, row_end), which must cover whole scale tiles (multiples of
// layout.tile_rows, or end at rows). Disjoint row ranges write disjoint bytes.
base::Result<QuantizedTensor> prepare_quantized_tensor(const BlockFormat& format, std::span<const float> x,
                                                       int64_t rows, int64_t cols,
                                                       const QuantizeOptions& options = {});
void quantize_rows(const BlockFormat& format, std::span<const float> x, int64_t row_begin, int64_t row_end,
                   const QuantizeOptions& options, QuantizedTensor& q);

// Dequantizes one stored row: row_data is that row's stored bytes, row_scales the scale row that
// covers it (scales + (row / tile_rows) * scale_cols * scale->bytes). Writes layout.cols values.
void dequantize_row(const BlockFormat& format, const TensorLayout& layout, const uint8_t* row_data,
                    const uint8_t* row_scales, float tensor_scale, float* out);

// Checks stored block scales read from a checkpoint: the byte count matches the layout and every
// scale decodes to a finite value >= 0 (E4M3 0x7F/0xFF and E8M0 0xFF are NaN). The error names the
// scale's [row, column] in the scale tensor; callers add the tensor name with with_context().
base::Status check_block_scales(const BlockFormat& format, const TensorLayout& layout,
                                std::span<const uint8_t> scales);

// Dequantizes a whole tensor into out [rows, cols].
void dequantize_tensor(const BlockFormat& format, const QuantizedTensor& q, std::span<float> out);

// Squared reconstruction error sum((x - dequant(q))^2) over the tensor.
double squared_error(const BlockFormat& format, const QuantizedTensor& q, std::span<const float> x);

// Re-orders the nibbles of packed 4-bit blocks of block_elems elements (block_elems / 2 bytes
// each): gpt-oss / ModelOpt pairs <-> llama.cpp halves. num_bytes must be a multiple of
// block_elems / 2; in and out must not overlap.
void convert_nibble_order(std::span<const uint8_t> in, std::span<uint8_t> out, int block_elems,
                          NibbleOrder from, NibbleOrder to);

// Tries tensor scales base * factor for each factor and returns the stored tensor scale whose
// quantization (with options' block search) has the smallest squared error; the base scale
// (the rule's own) is always a candidate. Formats without a tensor scale return 1.
base::Result<float> search_tensor_scale(const BlockFormat& format, std::span<const float> x, int64_t rows,
                                        int64_t cols, std::span<const float> factors,
                                        const QuantizeOptions& options = {});

}  // namespace nibble::formats
