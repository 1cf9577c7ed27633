// Continuous-batching scheduler (vLLM: vllm/v1/core/sched/scheduler.py), FCFS.
//
// Each schedule() fills a token budget: first the running requests (decodes, and the next chunk
// of prefills in progress), then waiting requests in arrival order (chunked prefill, prefix-cache
// hits skipped). When a running request cannot get a KV block, the latest-admitted running
// request is preempted by recompute: its blocks are freed and it returns to the front of the
// waiting queue with num_computed_tokens = 0. The scheduler owns no tensors.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "engine/kv_cache_manager.h"
#include "engine/request.h"
#include "engine/scheduler_output.h"

namespace nibble::engine {

struct SchedulerConfig {
  int32_t max_num_seqs = 32;              // running requests at most
  int32_t max_num_batched_tokens = 2048;  // tokens per step at most
  int32_t max_model_len = 4096;           // prompt + output tokens at most
  int32_t max_num_waiting = 0;            // queue bound for add_request; 0 = unbounded
  int32_t vocab_size = 0;                 // prompt token ids are checked against it; 0 = unchecked
  std::vector<int32_t> eos_token_ids;     // the model's end-of-sequence ids
};

struct SchedulerStats {
  int32_t num_running = 0;
  int32_t num_waiting = 0;
  double kv_cache_usage = 0.0;  // referenced blocks / current pool size
  int32_t kv_num_blocks = 0;
  int32_t kv_num_free_blocks = 0;
  int32_t kv_max_num_blocks = 0;
  // Cumulative counters since start.
  PrefixCacheStats prefix_cache;
  int64_t num_preemptions = 0;
  int64_t num_prompt_tokens = 0;      // prompts of requests that produced their first token
  int64_t num_generation_tokens = 0;  // sampled tokens
  int64_t num_finished_stop = 0;
  int64_t num_finished_length = 0;
  int64_t num_finished_abort = 0;
  int64_t num_finished_error = 0;
};

class Scheduler {
 public:
  Scheduler(SchedulerConfig config, std::unique_ptr<KVCacheManager> kv_cache_manager);

  // Validates and queues a request. Errors: empty or too long prompt, token ids outside the
  // vocabulary, bad sampling params, duplicate id (invalid_argument); a request whose longest
  // possible sequence can never fit the KV cache, or a full queue (resource_exhausted).
  base::Status add_request(EngineCoreRequest core_request);
  // The checks of add_request that need no scheduler state (safe from any thread: reads only
  // the immutable config and KV cap).
  base::Status validate_request(const EngineCoreRequest& core_request) const;

  // Finishes requests wherever they are (waiting or running) and frees their blocks at once.
  // Unknown or already finished ids are ignored. Returns one final output per finished request.
  std::vector<EngineCoreOutput> finish_requests(const std::vector<std::string>& request_ids,
                                                RequestStatus finished_status,
                                                const std::string& error_message = {});

  SchedulerOutput schedule();

  // Registers written blocks in the prefix cache, appends sampled tokens, applies stop
  // conditions, finishes requests. Returns the deltas for requests that got tokens or finished.
  std::vector<EngineCoreOutput> update_from_output(const SchedulerOutput& scheduler_output,
                                                   const ModelRunnerOutput& model_runner_output);

  int32_t get_num_unfinished_requests() const {
    return static_cast<int32_t>(waiting_.size() + running_.size());
  }
  bool has_unfinished_requests() const { return get_num_unfinished_requests() > 0; }
  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  const std::vector<Request*>& running() const { return running_; }
  const std::deque<Request*>& waiting() const { return waiting_; }
  const Request* get_request(const std::string& request_id) const;

  SchedulerStats make_stats();
  const SchedulerConfig& config() const { return config_; }
  KVCacheManager& kv_cache_manager() { return *kv_cache_manager_; }
  const KVCacheManager& kv_cache_manager() const { return *kv_cache_manager_; }

 private:
  // Frees the request's blocks and sends it back to the front of the waiting queue.
  void preempt(Request* request);
  // Sets a finished status when a stop condition holds for the last appended token.
  bool check_stop(Request& request, int32_t last_token_id) const;
  void count_finished(RequestStatus status);
  void remove_finished(Request* request);
  static EngineCoreOutput make_output(const Request& request);

  SchedulerConfig config_;
  std::unique_ptr<KVCacheManager> kv_cache_manager_;
  std::unordered_map<std::string, std::unique_ptr<Request>> requests_;
  std::deque<Request*> waiting_;
  std::vector<Request*> running_;
  std::vector<std::string> finished_req_ids_;  // since the last schedule()
  int64_t next_arrival_seq_ = 0;
  SchedulerStats stats_;
};

}  // namespace nibble::engine
