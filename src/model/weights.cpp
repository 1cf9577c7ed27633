#include "model/weights.h"

#include <cstring>

#include "base/float16.h"

namespace nibble::model {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

base::Result<const io::TensorInfo*> WeightLoader::get_checked(const std::string& name,
                                                              const std::vector<int64_t>& shape) {
  const io::TensorInfo* t = checkpoint_.find(name);
  if (t == nullptr) {
    return base::not_found(checkpoint_.dir() + ": tensor '" + name + "' is missing from the checkpoint");
  }
  const std::string where = (t->file != nullptr ? *t->file : checkpoint_.dir()) + ": tensor '" + name + "'";
  if (t->shape != shape) {
    return base::corrupt(where + ": expected shape " + shape_string(shape) + ", got " +
                         shape_string(t->shape));
  }
  return t;
}

base::Result<kernels::MatWeight> WeightLoader::matrix(const std::string& name, int64_t num_rows,
                                                      int64_t num_cols) {
  if (!quant_) {
    NIBBLE_ASSIGN_OR_RETURN(quant_, load_quant_config(checkpoint_.dir()));
  }
  const io::TensorInfo* plain = checkpoint_.find(name);
  const bool plain_dtype = plain != nullptr && kernels::plain_format_for_dtype(plain->dtype).has_value();
  // Unquantized modules (lm_head, embeddings, excluded layers) keep a plain "weight" in any layout.
  if (quant_->method != QuantMethod::kNone && !plain_dtype) {
    const std::string suffix = ".weight";
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      return base::unsupported(checkpoint_.dir() + ": tensor '" + name + "': cannot be quantized");
    }
    return quantized_matrix(name.substr(0, name.size() - suffix.size()), num_rows, num_cols);
  }
  NIBBLE_ASSIGN_OR_RETURN(const io::TensorInfo* t, get_checked(name, {num_rows, num_cols}));
  const auto format = kernels::plain_format_for_dtype(t->dtype);
  if (!format) {
    return base::unsupported((t->file != nullptr ? *t->file : checkpoint_.dir()) + ": tensor '" + name +
                             "': dtype " + std::string(tensor::dtype_name(t->dtype)) +
                             " is not supported for a matmul weight (expected BF16, F16 or F32; a quantized "
                             "checkpoint needs a quantization_config in config.json or hf_quant_config.json)");
  }
  const auto& info = kernels::weight_format_info(*format);
  kernels::MatWeight w;
  w.format = *format;
  w.num_rows = num_rows;
  w.num_cols = num_cols;
  w.row_bytes = num_cols / info.block_elems * info.block_bytes;
  w.data = t->data;
  NIBBLE_CHECK(static_cast<uint64_t>(w.row_bytes * num_rows) == t->num_bytes, "reader checked byte length");
  bytes_loaded_ += t->num_bytes;
  return w;
}

base::Result<std::vector<float>> WeightLoader::vector(const std::string& name, int64_t num_elems) {
  return floats(name, {num_elems});
}

base::Result<const io::TensorInfo*> WeightLoader::raw(const std::string& name,
                                                      const std::vector<int64_t>& shape,
                                                      tensor::DType dtype) {
  NIBBLE_ASSIGN_OR_RETURN(const io::TensorInfo* t, get_checked(name, shape));
  if (t->dtype != dtype) {
    return base::unsupported((t->file != nullptr ? *t->file : checkpoint_.dir()) + ": tensor '" + name +
                             "': dtype " + std::string(tensor::dtype_name(t->dtype)) + ", expected " +
                             std::string(tensor::dtype_name(dtype)));
  }
  bytes_loaded_ += t->num_bytes;
  return t;
}

base::Result<std::vector<float>> WeightLoader::floats(const std::string& name,
                                                      const std::vector<int64_t>& shape) {
  NIBBLE_ASSIGN_OR_RETURN(const io::TensorInfo* t, get_checked(name, shape));
  int64_t num_elems = 1;
  for (int64_t d : shape) num_elems *= d;
  std::vector<float> out(static_cast<size_t>(num_elems));
  for (int64_t i = 0; i < num_elems; ++i) {
    uint16_t h = 0;
    switch (t->dtype) {
      case tensor::DType::kF32:
        std::memcpy(&out[static_cast<size_t>(i)], t->data + i * 4, 4);
        break;
      case tensor::DType::kBF16:
        std::memcpy(&h, t->data + i * 2, 2);
        out[static_cast<size_t>(i)] = base::bf16_to_float(h);
        break;
      case tensor::DType::kF16:
        std::memcpy(&h, t->data + i * 2, 2);
        out[static_cast<size_t>(i)] = base::f16_to_float(h);
        break;
      default:
        return base::unsupported((t->file != nullptr ? *t->file : checkpoint_.dir()) + ": tensor '" + name +
                                 "': dtype " + std::string(tensor::dtype_name(t->dtype)) +
                                 " is not supported for a vector weight (expected BF16, F16 or F32)");
    }
  }
  bytes_loaded_ += t->num_bytes;
  bytes_copied_ += out.size() * sizeof(float);
  return out;
}

}  // namespace nibble::model
