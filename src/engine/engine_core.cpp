#include "engine/engine_core.h"

#include <limits>
#include <utility>

#include "base/log.h"

namespace nibble::engine {
namespace detail {

// One request's output stream: the engine thread merges deltas in, the consumer takes them out.
struct OutputChannel {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<EngineCoreOutput> pending;  // deltas not yet taken, merged
};

// What callers hand the engine thread; shared with RequestHandles so a handle can abort even
// after the engine is gone.
struct EngineInbox {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<EngineCoreRequest, std::shared_ptr<OutputChannel>>> new_requests;
  std::vector<std::pair<std::string, FinishReason>> aborts;
  std::unordered_set<std::string> live_ids;  // added and not yet finished
  int32_t num_waiting = 0;                   // scheduler's waiting queue, as of the last step
  int64_t next_request_number = 0;
  bool stopped = false;

  void push_abort(const std::string& request_id, FinishReason reason) {
    {
      std::lock_guard lock(mu);
      if (stopped || !live_ids.contains(request_id)) return;
      aborts.emplace_back(request_id, reason);
    }
    cv.notify_one();
  }
};

namespace {

void merge_into(EngineCoreOutput& into, EngineCoreOutput&& delta) {
  into.new_token_ids.insert(into.new_token_ids.end(), delta.new_token_ids.begin(), delta.new_token_ids.end());
  into.new_logprobs.insert(into.new_logprobs.end(), std::make_move_iterator(delta.new_logprobs.begin()),
                           std::make_move_iterator(delta.new_logprobs.end()));
  into.finish_reason = delta.finish_reason;
  into.stop_reason = delta.stop_reason;
  into.num_prompt_tokens = delta.num_prompt_tokens;
  into.num_cached_tokens = delta.num_cached_tokens;
  into.error_message = std::move(delta.error_message);
}

void push_output(OutputChannel& channel, EngineCoreOutput&& output) {
  {
    std::lock_guard lock(channel.mu);
    if (channel.pending)
      merge_into(*channel.pending, std::move(output));
    else
      channel.pending = std::move(output);
  }
  channel.cv.notify_all();
}

EngineCoreOutput final_output(const std::string& request_id, FinishReason reason, std::string message) {
  EngineCoreOutput o;
  o.request_id = request_id;
  o.finish_reason = reason;
  o.error_message = std::move(message);
  return o;
}

}  // namespace
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// RequestHandle

RequestHandle::RequestHandle(std::string request_id, std::shared_ptr<detail::OutputChannel> channel,
                             std::shared_ptr<detail::EngineInbox> inbox)
    : request_id_(std::move(request_id)), channel_(std::move(channel)), inbox_(std::move(inbox)) {}

RequestHandle& RequestHandle::operator=(RequestHandle&& other) noexcept {
  if (this != &other) {
    release();
    request_id_ = std::move(other.request_id_);
    channel_ = std::move(other.channel_);
    inbox_ = std::move(other.inbox_);
    done_ = other.done_;
  }
  return *this;
}

RequestHandle::~RequestHandle() {
  release();
}

void RequestHandle::release() {
  if (inbox_ && !done_) inbox_->push_abort(request_id_, FinishReason::kAbort);
  inbox_.reset();
  channel_.reset();
}

void RequestHandle::finish(FinishReason reason) {
  if (inbox_ && !done_) inbox_->push_abort(request_id_, reason);
}

std::optional<RequestOutput> RequestHandle::take(std::unique_lock<std::mutex>&) {
  if (!channel_->pending) return std::nullopt;
  RequestOutput out = std::move(*channel_->pending);
  channel_->pending.reset();
  if (out.finished()) done_ = true;
  return out;
}

std::optional<RequestOutput> RequestHandle::next() {
  if (done_ || !channel_) return std::nullopt;
  std::unique_lock lock(channel_->mu);
  channel_->cv.wait(lock, [&] { return channel_->pending.has_value(); });
  return take(lock);
}

std::optional<RequestOutput> RequestHandle::next_for(std::chrono::nanoseconds timeout) {
  if (done_ || !channel_) return std::nullopt;
  std::unique_lock lock(channel_->mu);
  channel_->cv.wait_for(lock, timeout, [&] { return channel_->pending.has_value(); });
  return take(lock);
}

// ---------------------------------------------------------------------------------------------
// EngineCore

base::Result<std::unique_ptr<EngineCore>> EngineCore::create(EngineConfig config,
                                                             std::unique_ptr<ModelRunner> runner) {
  if (!runner) return base::invalid_argument("engine: no model runner");
  const KvCachePlan& plan = config.kv_cache;
  if (plan.block_size <= 0 || plan.initial_num_blocks <= 0 || plan.max_num_blocks < plan.initial_num_blocks ||
      plan.min_num_blocks > plan.initial_num_blocks)
    return base::invalid_argument("engine: inconsistent KV cache plan (" + plan.describe() + ")");
  const SchedulerConfig& sc = config.scheduler;
  if (sc.max_num_seqs <= 0) return base::invalid_argument("--max-num-seqs must be positive");
  if (sc.max_num_batched_tokens <= 0)
    return base::invalid_argument("--max-num-batched-tokens must be positive");
  if (sc.max_model_len < 2) return base::invalid_argument("--max-model-len must be at least 2");
  KVCacheConfig kv_config;
  kv_config.block_size_tokens = plan.block_size;
  kv_config.num_blocks = plan.initial_num_blocks;
  kv_config.max_num_blocks = plan.max_num_blocks;
  kv_config.groups = config.kv_cache_groups;
  NIBBLE_ASSIGN_OR_RETURN(auto kv_manager,
                          KVCacheManager::create(kv_config, sc.max_model_len, config.enable_prefix_caching));
  NIBBLE_TRY(runner->set_num_kv_blocks(plan.initial_num_blocks).with_context("allocating the KV cache"));
  auto scheduler = std::make_unique<Scheduler>(sc, std::move(kv_manager));
  std::unique_ptr<EngineCore> engine(
      new EngineCore(std::move(config), std::move(runner), std::move(scheduler)));
  engine->thread_ = std::thread([e = engine.get()] { e->run_loop(); });
  return engine;
}

EngineCore::EngineCore(EngineConfig config, std::unique_ptr<ModelRunner> runner,
                       std::unique_ptr<Scheduler> scheduler)
    : config_(std::move(config)),
      runner_(std::move(runner)),
      scheduler_(std::move(scheduler)),
      inbox_(std::make_shared<detail::EngineInbox>()) {
  if (config_.kv_cache.growable()) {
    scheduler_->kv_cache_manager().set_grow_fn(
        [this](int32_t current, int32_t short_by) { return grow_kv_cache(current, short_by); });
  }
  publish_stats();
}

EngineCore::~EngineCore() {
  shutdown();
}

void EngineCore::shutdown() {
  {
    std::lock_guard lock(inbox_->mu);
    inbox_->stopped = true;
  }
  inbox_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
}

base::Result<RequestHandle> EngineCore::add_request(EngineCoreRequest request) {
  NIBBLE_TRY(scheduler_->validate_request(request));
  auto channel = std::make_shared<detail::OutputChannel>();
  std::string id;
  {
    std::lock_guard lock(inbox_->mu);
    if (inbox_->stopped) return base::cancelled("engine: shutting down, not accepting requests");
    if (request.request_id.empty())
      request.request_id = "req-" + std::to_string(inbox_->next_request_number++);
    if (inbox_->live_ids.contains(request.request_id))
      return base::invalid_argument("request_id: '" + request.request_id + "' is already in use");
    const int32_t max_waiting = config_.scheduler.max_num_waiting;
    if (max_waiting > 0 &&
        inbox_->num_waiting + static_cast<int32_t>(inbox_->new_requests.size()) >= max_waiting)
      return base::resource_exhausted("the request queue is full (" + std::to_string(max_waiting) +
                                      " waiting); retry later");
    id = request.request_id;
    inbox_->live_ids.insert(id);
    inbox_->new_requests.emplace_back(std::move(request), channel);
  }
  inbox_->cv.notify_one();
  return RequestHandle(std::move(id), std::move(channel), inbox_);
}

void EngineCore::finish_request(const std::string& request_id, FinishReason reason) {
  inbox_->push_abort(request_id, reason);
}

EngineStats EngineCore::stats() const {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

void EngineCore::publish_stats() {
  EngineStats s;
  s.scheduler = scheduler_->make_stats();
  s.kv_cache_bytes = int64_t{s.scheduler.kv_num_blocks} * config_.kv_cache.bytes_per_block;
  s.kv_cache_max_bytes = int64_t{s.scheduler.kv_max_num_blocks} * config_.kv_cache.bytes_per_block;
  s.num_steps = num_steps_;
  s.num_kv_grows = num_kv_grows_;
  s.num_kv_shrinks = num_kv_shrinks_;
  {
    std::lock_guard lock(inbox_->mu);
    inbox_->num_waiting = s.scheduler.num_waiting;
  }
  std::lock_guard lock(stats_mu_);
  stats_ = s;
}

void EngineCore::deliver(std::vector<EngineCoreOutput> outputs) {
  for (EngineCoreOutput& output : outputs) {
    auto it = channels_.find(output.request_id);
    if (it == channels_.end()) continue;
    std::shared_ptr<detail::OutputChannel> channel = it->second;
    if (output.finished()) {
      // Free the id before the consumer can see the end, so it may reuse the id at once.
      {
        std::lock_guard lock(inbox_->mu);
        inbox_->live_ids.erase(output.request_id);
      }
      channels_.erase(it);
    }
    detail::push_output(*channel, std::move(output));
  }
}

int32_t EngineCore::grow_kv_cache(int32_t current_num_blocks, int32_t num_blocks_short) {
  MemoryInfo now;
  auto probed = config_.memory_probe ? config_.memory_probe() : read_memory_info();
  if (probed.ok()) {
    now = *probed;
  } else {  // cannot tell: rely on the cap alone
    now.mem_total_bytes = now.mem_available_bytes = std::numeric_limits<int64_t>::max() / 2;
  }
  const int32_t num_blocks = blocks_to_grow(config_.kv_cache, current_num_blocks, num_blocks_short, now);
  if (num_blocks <= 0) return 0;
  base::Status st = runner_->set_num_kv_blocks(current_num_blocks + num_blocks);
  if (!st.ok()) {
    base::log_warn("KV cache: could not grow to " + std::to_string(current_num_blocks + num_blocks) +
                   " blocks: " + st.message());
    return 0;
  }
  ++num_kv_grows_;
  base::log_debug("KV cache grew to " + std::to_string(current_num_blocks + num_blocks) + " blocks (" +
                  format_bytes(int64_t{current_num_blocks + num_blocks} * config_.kv_cache.bytes_per_block) +
                  ")");
  return num_blocks;
}

void EngineCore::maybe_shrink_kv_cache() {
  KVCacheManager& kv = scheduler_->kv_cache_manager();
  const int32_t removed = kv.shrink(blocks_to_shrink(config_.kv_cache, kv.block_pool().num_blocks()),
                                    config_.kv_cache.min_num_blocks);
  if (removed <= 0) return;
  ++num_kv_shrinks_;
  base::Status st = runner_->set_num_kv_blocks(kv.block_pool().num_blocks());
  if (!st.ok()) base::log_warn("KV cache: could not release memory: " + st.message());
  base::log_debug("KV cache shrank to " + std::to_string(kv.block_pool().num_blocks()) + " blocks");
}

void EngineCore::step() {
  SchedulerOutput out = scheduler_->schedule();
  ++num_steps_;
  if (out.empty()) {
    // Nothing runs, so every block is free, yet the head of the queue cannot get its blocks: the
    // pool cannot grow (memory pressure). Fail it rather than spin. This includes a request that
    // just preempted itself as the only one running (its chunked prefill outgrew the whole pool):
    // requeued, it would recompute up to the same point forever.
    if (scheduler_->num_running() == 0 && scheduler_->num_waiting() > 0) {
      const std::string id = scheduler_->waiting().front()->request_id();
      deliver(scheduler_->finish_requests(
          {id}, RequestStatus::kFinishedError,
          "KV cache: no room for this request and the cache cannot grow further (" +
              std::to_string(scheduler_->kv_cache_manager().block_pool().num_blocks()) + " blocks)"));
    }
    return;
  }
  auto result = runner_->execute_model(out);
  if (result.ok() && result->sampled_token_ids.size() != out.scheduled.size())
    result =
        base::internal_error("model runner returned " + std::to_string(result->sampled_token_ids.size()) +
                             " outputs for " + std::to_string(out.scheduled.size()) + " requests");
  if (result.ok()) {
    for (size_t i = 0; i < out.scheduled.size() && result.ok(); ++i) {
      if (out.scheduled[i].sample && result->sampled_token_ids[i].empty())
        result = base::internal_error("model runner sampled no token for " + out.scheduled[i].request_id());
    }
  }
  if (!result.ok()) {
    std::vector<std::string> ids;
    for (const ScheduledRequest& s : out.scheduled) ids.push_back(s.request_id());
    base::log_error("model step failed: " + result.status().message());
    deliver(scheduler_->finish_requests(ids, RequestStatus::kFinishedError,
                                        "model step failed: " + result.status().message()));
    return;
  }
  deliver(scheduler_->update_from_output(out, *result));
}

void EngineCore::run_loop() {
  detail::EngineInbox& inbox = *inbox_;
  for (;;) {
    std::vector<std::pair<EngineCoreRequest, std::shared_ptr<detail::OutputChannel>>> adds;
    std::vector<std::pair<std::string, FinishReason>> aborts;
    {
      std::unique_lock lock(inbox.mu);
      auto has_input = [&] { return inbox.stopped || !inbox.new_requests.empty() || !inbox.aborts.empty(); };
      if (!scheduler_->has_unfinished_requests() && !has_input()) {
        const bool can_shrink =
            config_.kv_shrink_idle_delay.count() >= 0 &&
            scheduler_->kv_cache_manager().block_pool().num_blocks() > config_.kv_cache.min_num_blocks;
        if (can_shrink) {
          if (!inbox.cv.wait_for(lock, config_.kv_shrink_idle_delay, has_input)) {
            lock.unlock();
            maybe_shrink_kv_cache();
            publish_stats();
            continue;
          }
        } else {
          inbox.cv.wait(lock, has_input);
        }
      }
      if (inbox.stopped) break;
      adds.swap(inbox.new_requests);
      aborts.swap(inbox.aborts);
    }
    for (auto& [request, channel] : adds) {
      const std::string id = request.request_id;
      channels_[id] = channel;
      base::Status st = scheduler_->add_request(std::move(request));
      if (!st.ok()) {
        const FinishReason reason =
            st.code() == base::ErrorCode::kResourceExhausted ? FinishReason::kError : FinishReason::kAbort;
        deliver({detail::final_output(id, reason, st.message())});
      }
    }
    for (const auto& [id, reason] : aborts) {
      const RequestStatus status = reason == FinishReason::kStop     ? RequestStatus::kFinishedStopped
                                   : reason == FinishReason::kLength ? RequestStatus::kFinishedLengthCapped
                                   : reason == FinishReason::kError  ? RequestStatus::kFinishedError
                                                                     : RequestStatus::kFinishedAborted;
      deliver(scheduler_->finish_requests({id}, status));
    }
    if (scheduler_->has_unfinished_requests()) step();
    publish_stats();
  }
  // Shutting down: end every stream so no consumer waits forever.
  std::vector<std::string> ids;
  for (const Request* r : scheduler_->running()) ids.push_back(r->request_id());
  for (const Request* r : scheduler_->waiting()) ids.push_back(r->request_id());
  deliver(scheduler_->finish_requests(ids, RequestStatus::kFinishedAborted, "engine shut down"));
  std::vector<std::pair<EngineCoreRequest, std::shared_ptr<detail::OutputChannel>>> never_started;
  {
    std::lock_guard lock(inbox.mu);
    never_started.swap(inbox.new_requests);
  }
  for (auto& [request, channel] : never_started)
    detail::push_output(*channel,
                        detail::final_output(request.request_id, FinishReason::kAbort, "engine shut down"));
  for (auto& [id, channel] : channels_)
    detail::push_output(*channel, detail::final_output(id, FinishReason::kAbort, "engine shut down"));
  channels_.clear();
  publish_stats();
}

}  // namespace nibble::engine
