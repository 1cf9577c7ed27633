#include "kernels/ops.h"

namespace nibble::kernels {
namespace {
MatmulObserver g_observer = nullptr;
void* g_observer_ctx = nullptr;
}  // namespace

void set_matmul_observer(MatmulObserver fn, void* ctx) {
  g_observer = fn;
  g_observer_ctx = ctx;
}

namespace {

void run_matmul(KernelTable::MatmulFn fn, base::ThreadPool& pool, const float* x, int64_t num_tokens,
                const MatWeight& w, float* y) {
  NIBBLE_CHECK(fn != nullptr, "no matmul kernel for this weight format");
  if (g_observer != nullptr) g_observer(g_observer_ctx, x, num_tokens, w);
  const int64_t num_rows = w.num_rows;
  // At least 16 output rows per task so tiny matrices are not split into tiny pieces.
  pool.parallel_for(num_rows, 16,
                    [&](int64_t begin, int64_t end) { fn(x, num_tokens, w, begin, end, y, num_rows); });
}

}  // namespace

void matmul(const KernelTable& table, base::ThreadPool& pool, const float* x, int64_t num_tokens,
            const MatWeight& w, float* y) {
  run_matmul(table.matmul[static_cast<int>(w.format)], pool, x, num_tokens, w, y);
}

void matmul_exact(const KernelTable& table, base::ThreadPool& pool, const float* x, int64_t num_tokens,
                  const MatWeight& w, float* y) {
  run_matmul(table.matmul_exact[static_cast<int>(w.format)], pool, x, num_tokens, w, y);
}

}  // namespace nibble::kernels
