// Online-softmax attention, one key at a time per query: running max m, running sum l of
// exp(s - m), and the output accumulated unnormalised and rescaled by exp(m_old - m_new)
// whenever the max grows; divided by l at the end.
#include "kernels/ref/ref_attention.h"

#include <cmath>
#include <limits>

namespace nibble::kernels::ref {
namespace {

void attention(const float* const* q_rows, float* const* out_rows, const int64_t* num_keys,
               int64_t num_queries, const float* const* k_rows, const float* const* v_rows, int64_t kv_offset,
               int64_t head_dim, float scale) {
  for (int64_t i = 0; i < num_queries; ++i) {
    const float* q = q_rows[i];
    float* out = out_rows[i];
    for (int64_t d = 0; d < head_dim; ++d) out[d] = 0.0f;
    float m = -std::numeric_limits<float>::infinity();
    float l = 0.0f;
    for (int64_t j = 0; j < num_keys[i]; ++j) {
      const float* k = k_rows[j] + kv_offset;
      const float* v = v_rows[j] + kv_offset;
      float s = 0.0f;
      for (int64_t d = 0; d < head_dim; ++d) s += q[d] * k[d];
      s *= scale;
      if (s > m) {
        const float corr = std::exp(m - s);  // 0 on the first key (m = -inf)
        l *= corr;
        for (int64_t d = 0; d < head_dim; ++d) out[d] *= corr;
        m = s;
      }
      const float p = std::exp(s - m);
      l += p;
      for (int64_t d = 0; d < head_dim; ++d) out[d] += p * v[d];
    }
    const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;
    for (int64_t d = 0; d < head_dim; ++d) out[d] *= inv_l;
  }
}

}  // namespace

void register_ref_attention(KernelTable& table) {
  table.attention = &attention;
}

}  // namespace nibble::kernels::ref
