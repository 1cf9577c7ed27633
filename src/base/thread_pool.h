// A persistent thread pool: threads are created once, and each parallel region wakes them
// instead of creating threads per op. The calling thread takes part in the work.
//
// Between regions the workers spin for a short while (kSpinIters pause instructions, tens of
// microseconds) before sleeping on the condition variable, and the caller spins likewise while
// waiting for them: a decode step runs hundreds of back-to-back regions of ~0.1 ms each, and a
// futex wake-up per region would cost a large share of that.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace nibble::base {

// A non-owning reference to a callable `void(int64_t task_idx, int thread_idx)`; no allocation.
class TaskFn {
 public:
  template <typename F>
  TaskFn(F& f)  // NOLINT: implicit by design
      : obj_(static_cast<void*>(&f)), call_([](void* obj, int64_t task_idx, int thread_idx) {
          (*static_cast<F*>(obj))(task_idx, thread_idx);
        }) {}
  void operator()(int64_t task_idx, int thread_idx) const { call_(obj_, task_idx, thread_idx); }

 private:
  void* obj_;
  void (*call_)(void*, int64_t, int);
};

class ThreadPool {
 public:
  // num_threads counts the calling thread: ThreadPool(1) runs everything inline.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Runs fn(task_idx, thread_idx) for task_idx in [0, num_tasks), tasks handed out dynamically.
  // Returns when all tasks are done. Not reentrant: do not call from inside a task.
  void run(int64_t num_tasks, TaskFn fn);

  // Splits [0, num_elems) into about num_threads contiguous ranges of at least min_chunk elements
  // and calls fn(begin, end) for each.
  template <typename F>
  void parallel_for(int64_t num_elems, int64_t min_chunk, F&& fn) {
    if (num_elems <= 0) return;
    if (min_chunk < 1) min_chunk = 1;
    int64_t num_chunks = std::min<int64_t>(num_threads_, (num_elems + min_chunk - 1) / min_chunk);
    if (num_chunks <= 1) {
      fn(int64_t{0}, num_elems);
      return;
    }
    const int64_t chunk = (num_elems + num_chunks - 1) / num_chunks;
    auto task = [&](int64_t task_idx, int) {
      const int64_t begin = task_idx * chunk;
      const int64_t end = std::min(num_elems, begin + chunk);
      if (begin < end) fn(begin, end);
    };
    run(num_chunks, TaskFn(task));
  }

 private:
  void worker_loop(int thread_idx);
  void work_on_current(int thread_idx);

  int num_threads_;
  std::vector<std::thread> workers_;
  static constexpr int kSpinIters = 2000;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::atomic<uint64_t> generation_{0};  // written under mutex_, read spinning without it
  bool stopping_ = false;                // guarded by mutex_
  std::atomic<int> busy_workers_{0};
  const TaskFn* current_fn_ = nullptr;
  int64_t current_num_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
};

// Number of hardware threads available to this process (sched affinity aware).
int available_cpus();

}  // namespace nibble::base
