#include "kernels/ops.h"

namespace nibble::kernels {

void matmul(const KernelTable& table, base::ThreadPool& pool, const float* x, int64_t num_tokens,
            const MatWeight& w, float* y) {
  const KernelTable::MatmulFn fn = table.matmul[static_cast<int>(w.format)];
  NIBBLE_CHECK(fn != nullptr, "no matmul kernel for this weight format");
  const int64_t num_rows = w.num_rows;
  // At least 16 output rows per task so tiny matrices are not split into tiny pieces.
  pool.parallel_for(num_rows, 16,
                    [&](int64_t begin, int64_t end) { fn(x, num_tokens, w, begin, end, y, num_rows); });
}

}  // namespace nibble::kernels
