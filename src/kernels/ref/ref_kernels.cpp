// Scalar reference bodies. Dot products keep 8 independent fp32 partial sums (a fixed, documented
// summation order) so the compiler may vectorise them without -ffast-math.
#include "kernels/ref/ref_kernels.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "base/float16.h"

namespace nibble::kernels::ref {
namespace {

constexpr int kLanes = 8;

// Decoders from one stored element to fp32, one per plain format.
struct DecodeF32 {
  static float at(const uint8_t* row, int64_t k) {
    float v;
    std::memcpy(&v, row + k * 4, 4);
    return v;
  }
};
struct DecodeBF16 {
  static float at(const uint8_t* row, int64_t k) {
    uint16_t h;
    std::memcpy(&h, row + k * 2, 2);
    return base::bf16_to_float(h);
  }
};
struct DecodeF16 {
  static float at(const uint8_t* row, int64_t k) {
    uint16_t h;
    std::memcpy(&h, row + k * 2, 2);
    return base::f16_to_float(h);
  }
};

template <typename Decode>
float dot_row(const float* x, const uint8_t* w_row, int64_t num_cols) {
  float acc[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= num_cols; k += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += x[k + l] * Decode::at(w_row, k + l);
  }
  for (; k < num_cols; ++k) acc[k % kLanes] += x[k] * Decode::at(w_row, k);
  float sum = 0.0f;
  for (int l = 0; l < kLanes; ++l) sum += acc[l];
  return sum;
}

template <typename Decode>
void matmul_plain(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin, int64_t n_end,
                  float* y, int64_t ldy) {
  const int64_t num_cols = w.num_cols;
  for (int64_t n = n_begin; n < n_end; ++n) {
    const uint8_t* w_row = w.data + n * w.row_bytes;
    for (int64_t m = 0; m < num_tokens; ++m)
      y[m * ldy + n] = dot_row<Decode>(x + m * num_cols, w_row, num_cols);
  }
}

template <typename Decode>
void decode_row_plain(const MatWeight& w, int64_t row, float* out) {
  const uint8_t* w_row = w.data + row * w.row_bytes;
  for (int64_t k = 0; k < w.num_cols; ++k) out[k] = Decode::at(w_row, k);
}

// Block-quantized formats: each row is decoded by the formats row's bit-exact dequantize_row into a
// per-thread fp32 buffer, then multiplied like an F32 row (same summation order as dot_row), so the
// result equals "dequantize the checkpoint, run in FP32" exactly. Activations stay fp32 (W4A16 /
// W8A16): input_scale is not applied.
formats::TensorLayout quant_layout(const formats::BlockFormat& f, const MatWeight& w) {
  formats::TensorLayout layout;
  layout.rows = w.num_rows;
  layout.cols = w.num_cols;
  layout.row_bytes = w.row_bytes;
  layout.tile_rows = w.scale_tile_rows;
  layout.tile_cols = f.block_cols == formats::kWholeDim ? w.num_cols : f.block_cols;
  layout.scale_cols = (w.num_cols + layout.tile_cols - 1) / layout.tile_cols;
  layout.scale_rows = (w.num_rows + layout.tile_rows - 1) / layout.tile_rows;
  layout.data_cols = w.row_bytes * 8 / f.element->bits;
  return layout;
}

void decode_quant_row(const formats::BlockFormat& f, const formats::TensorLayout& layout, const MatWeight& w,
                      int64_t row, float* out) {
  const uint8_t* scales = w.block_scales + (row / w.scale_tile_rows) * w.scale_row_bytes;
  formats::dequantize_row(f, layout, w.data + row * w.row_bytes, scales, w.tensor_scale, out);
}

float* row_buffer(int64_t num_cols) {
  thread_local std::vector<float> buffer;  // grows once per thread to the widest K seen
  if (static_cast<int64_t>(buffer.size()) < num_cols) buffer.resize(static_cast<size_t>(num_cols));
  return buffer.data();
}

void matmul_quant(const float* x, int64_t num_tokens, const MatWeight& w, int64_t n_begin, int64_t n_end,
                  float* y, int64_t ldy) {
  const formats::BlockFormat& f = *block_format_of(w.format);
  const formats::TensorLayout layout = quant_layout(f, w);
  const int64_t num_cols = w.num_cols;
  float* row = row_buffer(num_cols);
  for (int64_t n = n_begin; n < n_end; ++n) {
    decode_quant_row(f, layout, w, n, row);
    const auto* row_bytes = reinterpret_cast<const uint8_t*>(row);
    for (int64_t m = 0; m < num_tokens; ++m)
      y[m * ldy + n] = dot_row<DecodeF32>(x + m * num_cols, row_bytes, num_cols);
  }
}

void decode_row_quant(const MatWeight& w, int64_t row, float* out) {
  const formats::BlockFormat& f = *block_format_of(w.format);
  decode_quant_row(f, quant_layout(f, w), w, row, out);
}

void rmsnorm(const float* x, const float* weight, int64_t num_rows, int64_t dim, float eps, float* y) {
  for (int64_t r = 0; r < num_rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= dim; i += kLanes) {
      for (int l = 0; l < kLanes; ++l) acc[l] += xr[i + l] * xr[i + l];
    }
    for (; i < dim; ++i) acc[i % kLanes] += xr[i] * xr[i];
    float sum_sq = 0.0f;
    for (int l = 0; l < kLanes; ++l) sum_sq += acc[l];
    const float inv_rms = 1.0f / std::sqrt(sum_sq / static_cast<float>(dim) + eps);
    for (int64_t j = 0; j < dim; ++j) yr[j] = weight[j] * (xr[j] * inv_rms);
  }
}

void rope(float* x, int64_t num_heads, int64_t head_dim, const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < num_heads; ++h) {
    float* xh = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float x1 = xh[i];
      const float x2 = xh[i + half];
      xh[i] = x1 * cos[i] - x2 * sin[i];
      xh[i + half] = x2 * cos[i] + x1 * sin[i];
    }
  }
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float max_val = x[0];
  for (int64_t i = 1; i < n; ++i) max_val = x[i] > max_val ? x[i] : max_val;
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max_val);
    sum += x[i];
  }
  const float inv_sum = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv_sum;
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

float dot(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
  }
  for (; i < n; ++i) acc[i % kLanes] += a[i] * b[i];
  float sum = 0.0f;
  for (int l = 0; l < kLanes; ++l) sum += acc[l];
  return sum;
}

void axpy(float alpha, const float* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

}  // namespace

void register_ref(KernelTable& table) {
  table.matmul[static_cast<int>(WeightFormat::kF32)] = &matmul_plain<DecodeF32>;
  table.matmul[static_cast<int>(WeightFormat::kBF16)] = &matmul_plain<DecodeBF16>;
  table.matmul[static_cast<int>(WeightFormat::kF16)] = &matmul_plain<DecodeF16>;
  table.decode_row[static_cast<int>(WeightFormat::kF32)] = &decode_row_plain<DecodeF32>;
  table.decode_row[static_cast<int>(WeightFormat::kBF16)] = &decode_row_plain<DecodeBF16>;
  table.decode_row[static_cast<int>(WeightFormat::kF16)] = &decode_row_plain<DecodeF16>;
  for (int i = 0; i < kNumWeightFormats; ++i) {
    if (block_format_of(static_cast<WeightFormat>(i)) == nullptr) continue;
    table.matmul[i] = &matmul_quant;
    table.decode_row[i] = &decode_row_quant;
  }
  table.rmsnorm = &rmsnorm;
  table.rope = &rope;
  table.softmax = &softmax;
  table.silu_mul = &silu_mul;
  table.dot = &dot;
  table.axpy = &axpy;
}

}  // namespace nibble::kernels::ref
