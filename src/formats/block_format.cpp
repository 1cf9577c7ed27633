// Generic block quantization over the format and rule rows (format_table.cpp).
#include "formats/block_format.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace nibble::formats {
namespace {

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Writes element code `code` for stored column `col` of a data row.
void put_code(const BlockFormat& format, uint8_t* row_data, int64_t col, uint8_t code) {
  if (format.element->bits == 4) {
    uint8_t& byte = row_data[col / 2];
    byte = (col % 2 == 0) ? static_cast<uint8_t>((byte & 0xF0) | (code & 0x0F))
                          : static_cast<uint8_t>((byte & 0x0F) | (code << 4));
  } else {
    row_data[col] = code;
  }
}

uint8_t get_code(const BlockFormat& format, const uint8_t* row_data, int64_t col) {
  if (format.element->bits == 4) {
    const uint8_t byte = row_data[col / 2];
    return (col % 2 == 0) ? (byte & 0x0F) : static_cast<uint8_t>(byte >> 4);
  }
  return row_data[col];
}

// One tile of the input: rows [row0, row_end), cols [col0, col_end) of x [rows, cols].
struct Tile {
  const float* x;
  int64_t cols;
  int64_t row0, row_end, col0, col_end;
};

float tile_amax(const Tile& t) {
  float amax = 0.0f;
  for (int64_t r = t.row0; r < t.row_end; ++r) {
    for (int64_t c = t.col0; c < t.col_end; ++c) amax = std::max(amax, std::fabs(t.x[r * t.cols + c]));
  }
  return amax;
}

// Squared error of the tile quantized with one block-scale code (padding elements are zeros and
// contribute nothing: every rule encodes 0 to a zero code).
double tile_error(const BlockFormat& format, const ScaleRule& rule, const Tile& t, uint32_t code,
                  float tensor_scale) {
  const float block_scale = format.scale->value(code);
  const float divisor = rule.divisor(block_scale, tensor_scale);
  const float multiplier = format.multiplier(block_scale, tensor_scale);
  double error = 0.0;
  for (int64_t r = t.row0; r < t.row_end; ++r) {
    for (int64_t c = t.col0; c < t.col_end; ++c) {
      const float v = t.x[r * t.cols + c];
      const float back = format.element->decode(rule.encode_element(v / divisor)) * multiplier;
      const double d = static_cast<double>(v) - static_cast<double>(back);
      error += d * d;
    }
  }
  return error;
}

uint32_t search_block_code(const BlockFormat& format, const ScaleRule& rule, const Tile& t,
                           uint32_t max_rule_code, float tensor_scale, const QuantizeOptions& options) {
  const ScaleCodec& codec = *format.scale;
  const int64_t below = options.mse_codes_below >= 0 ? options.mse_codes_below : codec.mse_codes_below;
  const int64_t above = options.mse_codes_above >= 0 ? options.mse_codes_above : codec.mse_codes_above;
  const int64_t lo = std::max<int64_t>(codec.min_code, static_cast<int64_t>(max_rule_code) - below);
  const int64_t hi = std::min<int64_t>(codec.max_code, static_cast<int64_t>(max_rule_code) + above);
  uint32_t best_code = max_rule_code;
  double best_error = tile_error(format, rule, t, max_rule_code, tensor_scale);
  for (int64_t code = lo; code <= hi; ++code) {
    const auto candidate = static_cast<uint32_t>(code);
    if (candidate == max_rule_code) continue;
    const double error = tile_error(format, rule, t, candidate, tensor_scale);
    if (error < best_error) {  // strictly better: ties keep the max-rule code
      best_error = error;
      best_code = candidate;
    }
  }
  return best_code;
}

}  // namespace

int block_bytes(const BlockFormat& format) {
  if (format.block_cols == kWholeDim) return 0;
  return format.block_cols * format.element->bits / 8;
}

base::Result<TensorLayout> tensor_layout(const BlockFormat& format, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) {
    return base::invalid_argument("format " + std::string(format.name) + ": empty shape [" +
                                  std::to_string(rows) + ", " + std::to_string(cols) + "]");
  }
  TensorLayout layout;
  layout.rows = rows;
  layout.cols = cols;
  layout.tile_rows = format.block_rows == kWholeDim ? rows : format.block_rows;
  layout.tile_cols = format.block_cols == kWholeDim ? cols : format.block_cols;
  layout.scale_rows = ceil_div(rows, layout.tile_rows);
  layout.scale_cols = ceil_div(cols, layout.tile_cols);
  layout.data_cols = format.pad_data_to_block ? layout.scale_cols * layout.tile_cols : cols;
  if ((layout.data_cols * format.element->bits) % 8 != 0) {
    return base::invalid_argument("format " + std::string(format.name) + ": " +
                                  std::to_string(layout.data_cols) +
                                  " columns cannot be packed into whole bytes");
  }
  layout.row_bytes = layout.data_cols * format.element->bits / 8;
  return layout;
}

base::Result<QuantizedTensor> prepare_quantized_tensor(const BlockFormat& format, std::span<const float> x,
                                                       int64_t rows, int64_t cols,
                                                       const QuantizeOptions& options) {
  NIBBLE_ASSIGN_OR_RETURN(const TensorLayout layout, tensor_layout(format, rows, cols));
  if (static_cast<int64_t>(x.size()) != rows * cols) {
    return base::invalid_argument("format " + std::string(format.name) + ": got " + std::to_string(x.size()) +
                                  " values for shape [" + std::to_string(rows) + ", " + std::to_string(cols) +
                                  "]");
  }
  const ScaleRule& rule = options.rule != nullptr ? *options.rule : format.rules[0];
  float tensor_amax = 0.0f;
  for (int64_t i = 0; i < rows * cols; ++i) {
    if (!std::isfinite(x[i])) {
      return base::invalid_argument("format " + std::string(format.name) + ": non-finite value at row " +
                                    std::to_string(i / cols) + ", column " + std::to_string(i % cols));
    }
    tensor_amax = std::max(tensor_amax, std::fabs(x[i]));
  }

  QuantizedTensor q;
  q.layout = layout;
  q.data.assign(static_cast<size_t>(layout.data_bytes()), 0);
  q.scales.assign(static_cast<size_t>(layout.num_scales() * format.scale->bytes), 0);
  q.tensor_scale = 1.0f;
  if (format.has_tensor_scale) {
    if (options.tensor_scale >= 0.0f) {
      q.tensor_scale = options.tensor_scale;
    } else {
      q.tensor_scale = rule.tensor_scale(options.tensor_amax >= 0.0f ? options.tensor_amax : tensor_amax);
    }
  }
  return q;
}

void quantize_rows(const BlockFormat& format, std::span<const float> x, int64_t row_begin, int64_t row_end,
                   const QuantizeOptions& options, QuantizedTensor& q) {
  const TensorLayout& layout = q.layout;
  const int64_t rows = layout.rows, cols = layout.cols;
  NIBBLE_CHECK(static_cast<int64_t>(x.size()) == rows * cols, "input size mismatch");
  NIBBLE_CHECK(0 <= row_begin && row_begin <= row_end && row_end <= rows, "bad row range");
  NIBBLE_CHECK(row_begin % layout.tile_rows == 0 && (row_end % layout.tile_rows == 0 || row_end == rows),
               "row range must cover whole scale tiles");
  const ScaleRule& rule = options.rule != nullptr ? *options.rule : format.rules[0];
  const int64_t sr_end = ceil_div(row_end, layout.tile_rows);
  for (int64_t sr = row_begin / layout.tile_rows; sr < sr_end; ++sr) {
    for (int64_t sc = 0; sc < layout.scale_cols; ++sc) {
      Tile tile{x.data(),
                cols,
                sr * layout.tile_rows,
                std::min(rows, (sr + 1) * layout.tile_rows),
                sc * layout.tile_cols,
                std::min(cols, (sc + 1) * layout.tile_cols)};
      uint32_t code = rule.block_code(tile_amax(tile), q.tensor_scale);
      if (options.search == ScaleSearch::kMse) {
        code = search_block_code(format, rule, tile, code, q.tensor_scale, options);
      }
      format.scale->store(
          code, &q.scales[static_cast<size_t>((sr * layout.scale_cols + sc) * format.scale->bytes)]);
      const float divisor = rule.divisor(format.scale->value(code), q.tensor_scale);
      // Stored columns of this tile, padding included (padding is 0 / divisor).
      const int64_t stored_end = std::min(layout.data_cols, (sc + 1) * layout.tile_cols);
      for (int64_t r = tile.row0; r < tile.row_end; ++r) {
        uint8_t* row_data = &q.data[static_cast<size_t>(r * layout.row_bytes)];
        for (int64_t c = tile.col0; c < stored_end; ++c) {
          const float v = c < cols ? x[r * cols + c] : 0.0f;
          put_code(format, row_data, c, rule.encode_element(v / divisor));
        }
      }
    }
  }
}

base::Result<QuantizedTensor> quantize_tensor(const BlockFormat& format, std::span<const float> x,
                                              int64_t rows, int64_t cols, const QuantizeOptions& options) {
  NIBBLE_ASSIGN_OR_RETURN(QuantizedTensor q, prepare_quantized_tensor(format, x, rows, cols, options));
  quantize_rows(format, x, 0, rows, options, q);
  return q;
}

void dequantize_row(const BlockFormat& format, const TensorLayout& layout, const uint8_t* row_data,
                    const uint8_t* row_scales, float tensor_scale, float* out) {
  for (int64_t sc = 0; sc < layout.scale_cols; ++sc) {
    const uint32_t code = format.scale->load(row_scales + sc * format.scale->bytes);
    const float multiplier = format.multiplier(format.scale->value(code), tensor_scale);
    const int64_t end = std::min(layout.cols, (sc + 1) * layout.tile_cols);
    for (int64_t c = sc * layout.tile_cols; c < end; ++c) {
      out[c] = format.element->decode(get_code(format, row_data, c)) * multiplier;
    }
  }
}

base::Status check_block_scales(const BlockFormat& format, const TensorLayout& layout,
                                std::span<const uint8_t> scales) {
  const int64_t want_bytes = layout.num_scales() * format.scale->bytes;
  if (static_cast<int64_t>(scales.size()) != want_bytes) {
    return base::corrupt("block scales: " + std::to_string(scales.size()) + " bytes, expected " +
                         std::to_string(want_bytes) + " for " + std::to_string(layout.scale_rows) + " x " +
                         std::to_string(layout.scale_cols) + " " + std::string(format.scale->name) +
                         " scales");
  }
  for (int64_t i = 0; i < layout.num_scales(); ++i) {
    const float v =
        format.scale->value(format.scale->load(&scales[static_cast<size_t>(i * format.scale->bytes)]));
    if (!std::isfinite(v) || v < 0.0f) {
      return base::corrupt("block scale [" + std::to_string(i / layout.scale_cols) + ", " +
                           std::to_string(i % layout.scale_cols) + "] is " + std::to_string(v));
    }
  }
  return base::ok_status();
}

void dequantize_tensor(const BlockFormat& format, const QuantizedTensor& q, std::span<float> out) {
  const TensorLayout& layout = q.layout;
  NIBBLE_CHECK(static_cast<int64_t>(out.size()) == layout.rows * layout.cols, "output size mismatch");
  NIBBLE_CHECK(static_cast<int64_t>(q.data.size()) == layout.data_bytes(), "data size mismatch");
  NIBBLE_CHECK(static_cast<int64_t>(q.scales.size()) == layout.num_scales() * format.scale->bytes,
               "scale size mismatch");
  for (int64_t r = 0; r < layout.rows; ++r) {
    const uint8_t* row_scales =
        &q.scales[static_cast<size_t>((r / layout.tile_rows) * layout.scale_cols * format.scale->bytes)];
    dequantize_row(format, layout, &q.data[static_cast<size_t>(r * layout.row_bytes)], row_scales,
                   q.tensor_scale, &out[static_cast<size_t>(r * layout.cols)]);
  }
}

double squared_error(const BlockFormat& format, const QuantizedTensor& q, std::span<const float> x) {
  std::vector<float> back(static_cast<size_t>(q.layout.rows * q.layout.cols));
  dequantize_tensor(format, q, back);
  NIBBLE_CHECK(x.size() == back.size(), "input size mismatch");
  double error = 0.0;
  for (size_t i = 0; i < back.size(); ++i) {
    const double d = static_cast<double>(x[i]) - static_cast<double>(back[i]);
    error += d * d;
  }
  return error;
}

void convert_nibble_order(std::span<const uint8_t> in, std::span<uint8_t> out, int block_elems,
                          NibbleOrder from, NibbleOrder to) {
  NIBBLE_CHECK(block_elems >= 2 && block_elems % 2 == 0, "block_elems must be even");
  const size_t block_bytes_count = static_cast<size_t>(block_elems / 2);
  NIBBLE_CHECK(in.size() == out.size() && in.size() % block_bytes_count == 0, "bad buffer sizes");
  std::vector<uint8_t> codes(static_cast<size_t>(block_elems));
  const size_t half = block_bytes_count;
  for (size_t base = 0; base < in.size(); base += block_bytes_count) {
    for (size_t j = 0; j < block_bytes_count; ++j) {
      const uint8_t lo = in[base + j] & 0x0F;
      const uint8_t hi = static_cast<uint8_t>(in[base + j] >> 4);
      const size_t lo_idx = from == NibbleOrder::kPairs ? 2 * j : j;
      const size_t hi_idx = from == NibbleOrder::kPairs ? 2 * j + 1 : j + half;
      codes[lo_idx] = lo;
      codes[hi_idx] = hi;
    }
    for (size_t j = 0; j < block_bytes_count; ++j) {
      const size_t lo_idx = to == NibbleOrder::kPairs ? 2 * j : j;
      const size_t hi_idx = to == NibbleOrder::kPairs ? 2 * j + 1 : j + half;
      out[base + j] = static_cast<uint8_t>(codes[lo_idx] | (codes[hi_idx] << 4));
    }
  }
}

base::Result<float> search_tensor_scale(const BlockFormat& format, std::span<const float> x, int64_t rows,
                                        int64_t cols, std::span<const float> factors,
                                        const QuantizeOptions& options) {
  if (!format.has_tensor_scale) return 1.0f;
  QuantizeOptions base_options = options;
  base_options.tensor_scale = -1.0f;
  NIBBLE_ASSIGN_OR_RETURN(const QuantizedTensor base, quantize_tensor(format, x, rows, cols, base_options));
  float best_scale = base.tensor_scale;
  double best_error = squared_error(format, base, x);
  for (float factor : factors) {
    if (!(factor > 0.0f) || !std::isfinite(factor)) {
      return base::invalid_argument("tensor-scale search factor must be positive and finite");
    }
    QuantizeOptions candidate_options = options;
    candidate_options.tensor_scale = base.tensor_scale * factor;
    NIBBLE_ASSIGN_OR_RETURN(const QuantizedTensor candidate,
                            quantize_tensor(format, x, rows, cols, candidate_options));
    const double error = squared_error(format, candidate, x);
    if (error < best_error) {
      best_error = error;
      best_scale = candidate_options.tensor_scale;
    }
  }
  return best_scale;
}

}  // namespace nibble::formats
