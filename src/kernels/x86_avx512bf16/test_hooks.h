// Plain entry points into activations.h for tests compiled without this ISA's flags (callers check
// that the CPU supports avx512bf16 first).
#pragma once

#include <cstdint>

namespace nibble::kernels::avx512bf16 {

void test_quantize_act_q8(const float* x, int64_t num_cols, int8_t* q, float* scales);
void test_quantize_act_q8_scalar(const float* x, int64_t num_cols, int8_t* q, float* scales);
void test_round_act_bf16(const float* x, int64_t num_cols, uint16_t* out);

}  // namespace nibble::kernels::avx512bf16
