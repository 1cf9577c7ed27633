#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <vector>

namespace nibble::base {
namespace {

TEST(ThreadPool, RunsEveryTaskOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int rep = 0; rep < 50; ++rep) {
      std::vector<std::atomic<int>> hits(97);
      auto fn = [&](int64_t task, int thread_idx) {
        ASSERT_GE(thread_idx, 0);
        ASSERT_LT(thread_idx, threads);
        hits[static_cast<size_t>(task)].fetch_add(1);
      };
      pool.run(97, TaskFn(fn));
      for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    }
  }
}

TEST(ThreadPool, ParallelForCoversRangeExactly) {
  ThreadPool pool(4);
  for (int64_t n : {0, 1, 5, 63, 1000}) {
    std::vector<int> covered(static_cast<size_t>(n), 0);
    pool.parallel_for(n, 7, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) covered[static_cast<size_t>(i)] += 1;
    });
    EXPECT_EQ(std::accumulate(covered.begin(), covered.end(), 0), n);
    for (int c : covered) EXPECT_EQ(c, 1);
  }
}

}  // namespace
}  // namespace nibble::base
