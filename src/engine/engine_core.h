// The engine core: one thread running schedule() -> model runner -> update_from_output, and the
// request API the CLI and the server share (vLLM: EngineCore + the AsyncLLM output streams).
//
//   auto engine = EngineCore::create(config, std::move(runner));       // starts the thread
//   auto handle = (*engine)->add_request({.prompt_token_ids = ids, .sampling_params = sp});
//   while (auto out = handle->next()) { ... out->new_token_ids ...; if (out->finished()) break; }
//
// Dropping a RequestHandle before its final output aborts the request (a disconnected client
// frees its KV blocks within one engine step). Stop strings: the detokenizer, watching the stream,
// calls finish(FinishReason::kStop) once a stop string appears (vLLM aborts from its output
// processor the same way); the stream then ends with finish_reason kStop.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/status.h"
#include "engine/memory_policy.h"
#include "engine/model_runner.h"
#include "engine/scheduler.h"

namespace nibble::engine {

// A delta of one request's output; deltas are merged when the consumer falls behind.
using RequestOutput = EngineCoreOutput;

struct EngineConfig {
  SchedulerConfig scheduler;
  KvCachePlan kv_cache;  // from plan_kv_cache(); growable plans grow on demand
  bool enable_prefix_caching = true;
  // Layer groups by attention kind (empty = one full-attention group); see KVCacheGroupSpec.
  std::vector<KVCacheGroupSpec> kv_cache_groups;
  // Give KV memory back (down to kv_cache.min_num_blocks) after the engine was idle this long;
  // negative = never. Shrinking drops the prefix cache of the removed blocks.
  std::chrono::milliseconds kv_shrink_idle_delay{10'000};
  // Memory now, for growth decisions; unset = read_memory_info(). Tests inject numbers.
  std::function<base::Result<MemoryInfo>()> memory_probe;
};

struct EngineStats {
  SchedulerStats scheduler;        // running, waiting, KV usage, prefix cache, preemptions, token counters
  int64_t kv_cache_bytes = 0;      // current pool
  int64_t kv_cache_max_bytes = 0;  // the cap
  int64_t num_steps = 0;
  int64_t num_kv_grows = 0;
  int64_t num_kv_shrinks = 0;
};

namespace detail {
struct OutputChannel;
struct EngineInbox;
}  // namespace detail

class RequestHandle {
 public:
  RequestHandle(std::string request_id, std::shared_ptr<detail::OutputChannel> channel,
                std::shared_ptr<detail::EngineInbox> inbox);
  RequestHandle(RequestHandle&&) noexcept = default;
  RequestHandle& operator=(RequestHandle&&) noexcept;
  RequestHandle(const RequestHandle&) = delete;
  RequestHandle& operator=(const RequestHandle&) = delete;
  ~RequestHandle();  // aborts the request unless its final output was received

  const std::string& request_id() const { return request_id_; }
  // Blocks until output is ready; returns all deltas since the last call merged into one, or
  // nullopt once the final output (finished() set) has been returned.
  std::optional<RequestOutput> next();
  // As next(), but gives up after `timeout` and returns nullopt; done() tells the two apart.
  std::optional<RequestOutput> next_for(std::chrono::nanoseconds timeout);
  // The final output has been returned.
  bool done() const { return done_; }
  void abort() { finish(FinishReason::kAbort); }
  // Ends the request early with `reason` (kStop for a stop string, kAbort otherwise).
  void finish(FinishReason reason);

 private:
  std::optional<RequestOutput> take(std::unique_lock<std::mutex>& lock);
  void release();

  std::string request_id_;
  std::shared_ptr<detail::OutputChannel> channel_;
  std::shared_ptr<detail::EngineInbox> inbox_;
  bool done_ = false;
};

class EngineCore {
 public:
  // Sizes the runner's KV storage to the plan's initial blocks and starts the engine thread.
  static base::Result<std::unique_ptr<EngineCore>> create(EngineConfig config,
                                                          std::unique_ptr<ModelRunner> runner);
  ~EngineCore();  // shutdown()
  EngineCore(const EngineCore&) = delete;
  EngineCore& operator=(const EngineCore&) = delete;

  // Validates and queues a request (an empty request_id gets "req-N"). Errors: invalid_argument
  // naming the field (prompt too long for max_model_len, bad sampling params, duplicate id),
  // resource_exhausted (can never fit the KV cache, queue full), cancelled (engine stopped).
  base::Result<RequestHandle> add_request(EngineCoreRequest request);
  // Aborts a waiting or running request; its blocks are freed before the next step. Unknown ids
  // are ignored. Its stream gets a final output with finish_reason kAbort.
  void abort(const std::string& request_id) { finish_request(request_id, FinishReason::kAbort); }
  // Ends a request early with `reason`: kStop (a stop string matched), kAbort or kError.
  void finish_request(const std::string& request_id, FinishReason reason);
  EngineStats stats() const;
  // Stops the thread after the current step; unfinished requests end with kAbort.
  void shutdown();

  const EngineConfig& config() const { return config_; }

 private:
  EngineCore(EngineConfig config, std::unique_ptr<ModelRunner> runner, std::unique_ptr<Scheduler> scheduler);
  void run_loop();
  void step();
  void deliver(std::vector<EngineCoreOutput> outputs);
  void maybe_shrink_kv_cache();
  int32_t grow_kv_cache(int32_t current_num_blocks, int32_t num_blocks_short);
  void publish_stats();

  EngineConfig config_;
  std::unique_ptr<ModelRunner> runner_;
  std::unique_ptr<Scheduler> scheduler_;  // engine thread only
  std::shared_ptr<detail::EngineInbox> inbox_;
  std::unordered_map<std::string, std::shared_ptr<detail::OutputChannel>> channels_;  // engine thread only
  mutable std::mutex stats_mu_;
  EngineStats stats_;  // guarded by stats_mu_
  int64_t num_steps_ = 0, num_kv_grows_ = 0, num_kv_shrinks_ = 0;
  std::thread thread_;
};

}  // namespace nibble::engine
