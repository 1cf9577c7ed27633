// WeightLoader's quantized layouts (../shared/docs/formats.md §2.4, §2.6, §3.3, §4): the tensors
// of one Linear module P are checked (names, dtypes, shapes, scale values) and wrapped in a
// kernels::MatWeight that points into the mapped checkpoint. Only scales stored in BF16/F16 are
// converted (to F32, in buffers the model keeps alive); weights are never copied.
#include <cmath>
#include <cstring>

#include "base/float16.h"
#include "formats/block_format.h"
#include "model/weights.h"

namespace nibble::model {
namespace {

using kernels::WeightFormat;

std::string where_of(const io::Checkpoint& ckpt, const io::TensorInfo& t) {
  return (t.file != nullptr ? *t.file : ckpt.dir()) + ": tensor '" + t.name + "'";
}

bool is_float_dtype(tensor::DType d) {
  return d == tensor::DType::kF32 || d == tensor::DType::kBF16 || d == tensor::DType::kF16;
}

float read_float(const uint8_t* p, tensor::DType d) {
  float v = 0.0f;
  uint16_t h = 0;
  if (d == tensor::DType::kF32) {
    std::memcpy(&v, p, 4);
    return v;
  }
  std::memcpy(&h, p, 2);
  return d == tensor::DType::kBF16 ? base::bf16_to_float(h) : base::f16_to_float(h);
}

}  // namespace

base::Result<float> WeightLoader::scalar_scale(const std::string& name, bool required, bool inverted) {
  const io::TensorInfo* t = checkpoint_.find(name);
  if (t == nullptr) {
    if (!required) return 0.0f;
    return base::not_found(checkpoint_.dir() + ": tensor '" + name +
                           "' (per-tensor scale) is missing from the checkpoint");
  }
  const std::string where = where_of(checkpoint_, *t);
  if (!is_float_dtype(t->dtype)) {
    return base::corrupt(where + ": dtype " + std::string(tensor::dtype_name(t->dtype)) +
                         ", expected F32 (or BF16/F16) for a scale");
  }
  if (!(t->shape.empty() || (t->shape.size() == 1 && t->shape[0] == 1))) {
    return base::corrupt(where + ": expected a scalar scale of shape [] or [1], got " + shape_string(t->shape));
  }
  const float v = read_float(t->data, t->dtype);
  if (!std::isfinite(v) || v <= 0.0f) {
    return base::corrupt(where + ": scale is " + std::to_string(v) + ", expected a finite value > 0");
  }
  bytes_loaded_ += t->num_bytes;
  return inverted ? 1.0f / v : v;
}

base::Result<const uint8_t*> WeightLoader::f32_scales(const io::TensorInfo& t, const std::string& where) {
  if (t.dtype == tensor::DType::kF32) return t.data;
  if (!is_float_dtype(t.dtype)) {
    return base::corrupt(where + ": dtype " + std::string(tensor::dtype_name(t.dtype)) +
                         ", expected F32, BF16 or F16 for FP8 scales");
  }
  const int64_t n = t.num_elems();
  std::vector<uint8_t>& buf = owned_->emplace_back(static_cast<size_t>(n) * 4);
  bytes_copied_ += buf.size();
  for (int64_t i = 0; i < n; ++i) {
    const float v = read_float(t.data + i * 2, t.dtype);
    std::memcpy(buf.data() + i * 4, &v, 4);
  }
  return buf.data();
}

base::Result<kernels::MatWeight> WeightLoader::quantized_matrix(const std::string& module, int64_t num_rows,
                                                                int64_t num_cols) {
  const QuantConfig& qc = *quant_;
  const std::string algo = module_algo(qc, module);
  auto need = [&](const std::string& suffix) -> base::Result<const io::TensorInfo*> {
    const io::TensorInfo* t = checkpoint_.find(module + suffix);
    if (t == nullptr) {
      return base::not_found(checkpoint_.dir() + ": tensor '" + module + suffix + "' is missing (module '" +
                             module + "' is quantized per " + qc.source + ")");
    }
    return t;
  };
  if (algo.empty()) {
    // Excluded or not listed: the plain weight must be there (matrix() saw no plain dtype).
    const io::TensorInfo* t = checkpoint_.find(module + ".weight");
    if (t == nullptr) {
      return base::not_found(checkpoint_.dir() + ": tensor '" + module + ".weight' is missing from the checkpoint");
    }
    return base::corrupt(where_of(checkpoint_, *t) + ": module is not quantized per " + qc.source +
                         " but its weight has dtype " + std::string(tensor::dtype_name(t->dtype)));
  }

  // Pick the weight format and the names of the element and block-scale tensors.
  WeightFormat format;
  std::string data_suffix = ".weight", scale_suffix = ".weight_scale";
  const char* tensor_scale_suffix = nullptr;
  bool tensor_scale_inverted = false;
  const char* input_scale_suffix = nullptr;
  bool input_inverted = false;
  switch (qc.method) {
    case QuantMethod::kModelOpt:
      if (algo == "NVFP4" || algo == "W4A16_NVFP4") {
        format = WeightFormat::kNVFP4;
        tensor_scale_suffix = ".weight_scale_2";
      } else if (algo == "FP8") {
        format = WeightFormat::kFP8Tensor;
      } else if (algo == "FP8_PER_CHANNEL_PER_TOKEN") {
        format = WeightFormat::kFP8Channel;
      } else if (algo == "FP8_PB_WO") {
        format = WeightFormat::kFP8Block;
      } else {
        return base::unsupported(qc.source + ": quant_algo '" + algo + "' for module '" + module +
                                 "' is not supported");
      }
      input_scale_suffix = ".input_scale";
      break;
    case QuantMethod::kCompressedTensors:
      if (qc.ct_format == "nvfp4-pack-quantized") {
        format = WeightFormat::kNVFP4CT;
        data_suffix = ".weight_packed";
        tensor_scale_suffix = ".weight_global_scale";
        input_scale_suffix = ".input_global_scale";
        input_inverted = true;
      } else {
        NIBBLE_ASSIGN_OR_RETURN(const io::TensorInfo* s, need(".weight_scale"));
        const bool scalar = s->shape.empty() || (s->shape.size() == 1 && s->shape[0] == 1);
        if (qc.ct_strategy == "tensor" || (qc.ct_strategy.empty() && scalar)) {
          format = WeightFormat::kFP8Tensor;
        } else if (qc.ct_strategy == "channel" || (qc.ct_strategy.empty() && s->shape.size() == 2 &&
                                                   s->shape[1] == 1 && s->shape[0] == num_rows)) {
          format = WeightFormat::kFP8Channel;
        } else if (qc.ct_strategy == "block" || qc.ct_strategy.empty()) {
          format = WeightFormat::kFP8Block;
        } else {
          return base::unsupported(qc.source + ": compressed-tensors weight strategy '" + qc.ct_strategy +
                                   "' is not supported for float-quantized");
        }
        input_scale_suffix = ".input_scale";
      }
      break;
    case QuantMethod::kFp8Block:
      format = WeightFormat::kFP8Block;
      scale_suffix = ".weight_scale_inv";
      break;
    case QuantMethod::kMxfp4:
      format = WeightFormat::kMXFP4;
      data_suffix = ".weight_blocks";
      scale_suffix = ".weight_scales";
      break;
    case QuantMethod::kNone:
    default:
      NIBBLE_CHECK(false, "quantized_matrix without a quantization config");
  }

  const formats::BlockFormat& bf = *kernels::block_format_of(format);
  NIBBLE_ASSIGN_OR_RETURN(const formats::TensorLayout layout, formats::tensor_layout(bf, num_rows, num_cols));
  NIBBLE_ASSIGN_OR_RETURN(const io::TensorInfo* data, need(data_suffix));
  NIBBLE_ASSIGN_OR_RETURN(const io::TensorInfo* scales, need(scale_suffix));
  const std::string data_where = where_of(checkpoint_, *data);
  const std::string scale_where = where_of(checkpoint_, *scales);

  // Element tensor.
  const bool fp4 = bf.element->bits == 4;
  std::vector<int64_t> want_shape = {num_rows, fp4 ? layout.row_bytes : num_cols};
  if (format == WeightFormat::kMXFP4) want_shape = {num_rows, layout.scale_cols, 16};
  const bool dtype_ok = fp4 ? data->dtype == tensor::DType::kU8 : data->dtype == tensor::DType::kF8E4M3;
  if (!dtype_ok) {
    return base::corrupt(data_where + ": dtype " + std::string(tensor::dtype_name(data->dtype)) + ", expected " +
                         (fp4 ? "U8 (packed E2M1)" : "F8_E4M3"));
  }
  if (data->shape != want_shape) {
    return base::corrupt(data_where + ": expected shape " + shape_string(want_shape) + " for a " +
                         std::to_string(num_rows) + " x " + std::to_string(num_cols) + " weight, got " +
                         shape_string(data->shape));
  }
  if (!fp4) {
    for (uint64_t i = 0; i < data->num_bytes; ++i) {
      if ((data->data[i] & 0x7F) == 0x7F) {
        return base::corrupt(data_where + ": NaN at row " + std::to_string(static_cast<int64_t>(i) / num_cols) +
                             ", column " + std::to_string(static_cast<int64_t>(i) % num_cols));
      }
    }
  }

  // Block scales.
  kernels::MatWeight w;
  w.format = format;
  w.num_rows = num_rows;
  w.num_cols = num_cols;
  w.row_bytes = layout.row_bytes;
  w.data = data->data;
  w.scale_tile_rows = layout.tile_rows;
  w.scale_row_bytes = layout.scale_cols * bf.scale->bytes;
  std::vector<std::vector<int64_t>> ok_shapes = {{layout.scale_rows, layout.scale_cols}};
  if (format == WeightFormat::kFP8Tensor) ok_shapes = {{}, {1}};
  if (format == WeightFormat::kFP8Channel) ok_shapes = {{num_rows}, {num_rows, 1}};
  if (format == WeightFormat::kFP8Block) {
    ok_shapes = {{layout.scale_rows, layout.scale_cols}, {layout.scale_rows, 1, layout.scale_cols, 1}};
  }
  bool shape_ok = false;
  for (const auto& s : ok_shapes) shape_ok = shape_ok || scales->shape == s;
  if (!shape_ok) {
    return base::corrupt(scale_where + ": expected shape " + shape_string(ok_shapes[0]) + " for a " +
                         std::to_string(num_rows) + " x " + std::to_string(num_cols) + " " +
                         std::string(bf.name) + " weight, got " + shape_string(scales->shape));
  }
  if (bf.scale->bytes == 1) {
    const bool scale_dtype_ok = scales->dtype == tensor::DType::kU8 ||
                                (bf.scale == &formats::kScaleE4M3 && scales->dtype == tensor::DType::kF8E4M3) ||
                                (bf.scale == &formats::kScaleE8M0 && scales->dtype == tensor::DType::kF8E8M0);
    if (!scale_dtype_ok) {
      return base::corrupt(scale_where + ": dtype " + std::string(tensor::dtype_name(scales->dtype)) +
                           ", expected " + (bf.scale == &formats::kScaleE4M3 ? "F8_E4M3" : "U8 (E8M0)"));
    }
    w.block_scales = scales->data;
  } else {
    NIBBLE_ASSIGN_OR_RETURN(w.block_scales, f32_scales(*scales, scale_where));
  }
  const base::Status scale_check = formats::check_block_scales(
      bf, layout,
      {w.block_scales, static_cast<size_t>(layout.num_scales() * bf.scale->bytes)});
  if (!scale_check.ok()) return scale_check.with_context(scale_where);

  if (tensor_scale_suffix != nullptr) {
    NIBBLE_ASSIGN_OR_RETURN(w.tensor_scale, scalar_scale(module + tensor_scale_suffix, true, tensor_scale_inverted));
  }
  if (input_scale_suffix != nullptr) {
    NIBBLE_ASSIGN_OR_RETURN(w.input_scale, scalar_scale(module + input_scale_suffix, false, input_inverted));
  }
  bytes_loaded_ += data->num_bytes + scales->num_bytes;
  return w;
}

}  // namespace nibble::model
