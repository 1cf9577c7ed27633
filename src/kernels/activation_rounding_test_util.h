// Test oracle: the activations a matmul of an ISA with IsaInfo::rounds_activations actually
// multiplies, restated in scalar C++ from the rules in x86_avx512bf16/activations.h (so a kernel
// can be checked against an fp64 product of those values, independently of its own rounding code).
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

#include "base/float16.h"
#include "formats/block_format.h"
#include "kernels/kernel_table.h"

namespace nibble::kernels {

enum class ActRounding { kNone, kBf16, kQ8Group32 };

inline ActRounding act_rounding(std::string_view isa, WeightFormat format) {
  bool rounds = false;
  for (const auto& info : known_isas()) {
    if (info.name == isa) rounds = info.rounds_activations;
  }
  if (!rounds || format == WeightFormat::kF32 || format == WeightFormat::kF16) return ActRounding::kNone;
  const formats::BlockFormat* bf = block_format_of(format);
  if (bf != nullptr && bf->element->bits == 4) return ActRounding::kQ8Group32;
  return ActRounding::kBf16;
}

// x[num_tokens, num_cols] as the kernel sees it, in double (q * scale of the Q8 rule is not
// always an fp32 value).
inline std::vector<double> rounded_activations(ActRounding rounding, const float* x, int64_t num_tokens,
                                               int64_t num_cols) {
  std::vector<double> out(static_cast<size_t>(num_tokens * num_cols));
  for (int64_t m = 0; m < num_tokens; ++m) {
    const float* xm = x + m * num_cols;
    double* om = out.data() + m * num_cols;
    if (rounding == ActRounding::kNone) {
      for (int64_t k = 0; k < num_cols; ++k) om[k] = xm[k];
    } else if (rounding == ActRounding::kBf16) {
      for (int64_t k = 0; k < num_cols; ++k) om[k] = base::bf16_to_float(base::float_to_bf16(xm[k]));
    } else {
      // Groups of 32 along K: amax, inv = 127 / amax in fp32, q = RNE(x * inv) in fp32, clamped
      // to +-127; value = q * (amax / 127) with the scale rounded to fp32. All-zero group -> 0.
      for (int64_t g0 = 0; g0 < num_cols; g0 += 32) {
        const int64_t g1 = g0 + 32 < num_cols ? g0 + 32 : num_cols;
        float amax = 0.0f;
        for (int64_t k = g0; k < g1; ++k) amax = std::fabs(xm[k]) > amax ? std::fabs(xm[k]) : amax;
        const float inv = amax == 0.0f ? 0.0f : 127.0f / amax;
        const float scale = amax / 127.0f;
        for (int64_t k = g0; k < g1; ++k) {
          float q = std::nearbyint(xm[k] * inv);
          q = q > 127.0f ? 127.0f : (q < -127.0f ? -127.0f : q);
          om[k] = static_cast<double>(q) * scale;
        }
      }
    }
  }
  return out;
}

}  // namespace nibble::kernels
