#include "base/thread_pool.h"

#include <sched.h>

#include <algorithm>

namespace nibble::base {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) : num_threads_(std::max(1, num_threads)) {
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::work_on_current(int thread_idx) {
  for (;;) {
    const int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= current_num_tasks_) break;
    (*current_fn_)(task, thread_idx);
  }
}

void ThreadPool::run(int64_t num_tasks, TaskFn fn) {
  if (num_tasks <= 0) return;
  if (workers_.empty() || num_tasks == 1) {
    for (int64_t t = 0; t < num_tasks; ++t) fn(t, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    current_fn_ = &fn;
    current_num_tasks_ = num_tasks;
    next_task_.store(0, std::memory_order_relaxed);
    busy_workers_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  work_on_current(0);
  for (int i = 0; i < kSpinIters && busy_workers_.load(std::memory_order_acquire) != 0; ++i) cpu_relax();
  if (busy_workers_.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return busy_workers_.load(std::memory_order_acquire) == 0; });
  }
  current_fn_ = nullptr;
}

void ThreadPool::worker_loop(int thread_idx) {
  uint64_t seen_generation = 0;
  for (;;) {
    for (int i = 0; i < kSpinIters && generation_.load(std::memory_order_acquire) == seen_generation; ++i) {
      cpu_relax();
    }
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock,
                 [&] { return stopping_ || generation_.load(std::memory_order_acquire) != seen_generation; });
      if (stopping_) return;
      seen_generation = generation_.load(std::memory_order_acquire);
    }
    work_on_current(thread_idx);
    if (busy_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // Taking the lock orders this notify after a waiter's predicate check.
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_one();
    }
  }
}

int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace nibble::base
