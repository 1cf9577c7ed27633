#include "kernels/x86_avx512bf16/test_hooks.h"

#include "kernels/x86_avx512bf16/activations.h"

namespace nibble::kernels::avx512bf16 {

void test_quantize_act_q8(const float* x, int64_t num_cols, int8_t* q, float* scales) {
  quantize_act_q8(x, num_cols, q, scales);
}
void test_quantize_act_q8_scalar(const float* x, int64_t num_cols, int8_t* q, float* scales) {
  quantize_act_q8_scalar(x, num_cols, q, scales);
}
void test_round_act_bf16(const float* x, int64_t num_cols, uint16_t* out) {
  round_act_bf16(x, num_cols, out);
}

}  // namespace nibble::kernels::avx512bf16
