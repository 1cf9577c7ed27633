#include "engine/scheduler.h"

#include <algorithm>
#include <utility>

namespace nibble::engine {

Scheduler::Scheduler(SchedulerConfig config, std::unique_ptr<KVCacheManager> kv_cache_manager)
    : config_(std::move(config)), kv_cache_manager_(std::move(kv_cache_manager)) {
  NIBBLE_CHECK(kv_cache_manager_ != nullptr, "scheduler without a KV cache manager");
  NIBBLE_CHECK(config_.max_num_seqs > 0 && config_.max_num_batched_tokens > 0 && config_.max_model_len > 1,
               "scheduler limits must be positive");
}

base::Status Scheduler::validate_request(const EngineCoreRequest& core_request) const {
  const auto num_prompt_tokens = static_cast<int64_t>(core_request.prompt_token_ids.size());
  if (num_prompt_tokens == 0) return base::invalid_argument("prompt: must contain at least one token");
  if (num_prompt_tokens >= config_.max_model_len)
    return base::invalid_argument("prompt: " + std::to_string(num_prompt_tokens) +
                                  " tokens leave no room for output within max_model_len " +
                                  std::to_string(config_.max_model_len) + " (prompt + output tokens)");
  if (config_.vocab_size > 0) {
    for (int32_t token_id : core_request.prompt_token_ids) {
      if (token_id < 0 || token_id >= config_.vocab_size)
        return base::invalid_argument("prompt: token id " + std::to_string(token_id) +
                                      " is outside the vocabulary of " + std::to_string(config_.vocab_size));
    }
  }
  NIBBLE_TRY(validate_sampling_params(core_request.sampling_params, config_.vocab_size));
  // The longest this request can get must fit the largest pool, or it could never run alone.
  const int64_t max_len =
      std::min<int64_t>(num_prompt_tokens + core_request.sampling_params.max_tokens, config_.max_model_len);
  const int32_t block_size = kv_cache_manager_->block_size();
  const int64_t blocks_needed =
      kv_cache_manager_->max_blocks_per_request(max_len, config_.max_num_batched_tokens);
  if (blocks_needed > kv_cache_manager_->max_num_blocks())
    return base::resource_exhausted(
        "prompt + max_tokens: up to " + std::to_string(max_len) + " tokens need " +
        std::to_string(blocks_needed) + " KV blocks but the KV cache holds at most " +
        std::to_string(kv_cache_manager_->max_num_blocks()) + " (" +
        std::to_string(int64_t{kv_cache_manager_->max_num_blocks()} * block_size) +
        " tokens); lower max_tokens or enlarge --kv-cache");
  return base::ok_status();
}

base::Status Scheduler::add_request(EngineCoreRequest core_request) {
  const std::string& id = core_request.request_id;
  if (id.empty()) return base::invalid_argument("request_id: must not be empty");
  if (requests_.contains(id)) return base::invalid_argument("request_id: '" + id + "' is already in use");
  NIBBLE_TRY(validate_request(core_request));
  if (config_.max_num_waiting > 0 && num_waiting() >= config_.max_num_waiting)
    return base::resource_exhausted("the request queue is full (" + std::to_string(config_.max_num_waiting) +
                                    " waiting); retry later");
  auto request =
      std::make_unique<Request>(std::move(core_request), config_.eos_token_ids, next_arrival_seq_++);
  Request* raw = request.get();
  requests_.emplace(raw->request_id(), std::move(request));
  waiting_.push_back(raw);
  return base::ok_status();
}

const Request* Scheduler::get_request(const std::string& request_id) const {
  auto it = requests_.find(request_id);
  return it == requests_.end() ? nullptr : it->second.get();
}

void Scheduler::preempt(Request* request) {
  kv_cache_manager_->free(*request);
  request->status = RequestStatus::kPreempted;
  request->num_computed_tokens = 0;
  ++request->num_preemptions;
  ++stats_.num_preemptions;
  waiting_.push_front(request);
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  out.block_size = kv_cache_manager_->block_size();
  out.finished_req_ids = std::move(finished_req_ids_);
  finished_req_ids_.clear();
  int32_t token_budget = config_.max_num_batched_tokens;

  struct Pending {
    Request* request;
    int32_t num_new_tokens;
    bool is_new;
  };
  std::vector<Pending> pending;

  // 1. Running requests, in admission order: decodes and the next chunk of unfinished prefills.
  std::vector<Request*> preempted;
  size_t req_index = 0;
  while (req_index < running_.size() && token_budget > 0) {
    Request* request = running_[req_index];
    const int32_t num_new_tokens =
        std::min(request->num_tokens() - request->num_computed_tokens, token_budget);
    if (num_new_tokens <= 0) {
      ++req_index;
      continue;
    }
    bool can_schedule = true;
    while (!kv_cache_manager_->allocate_slots(*request, num_new_tokens)) {
      // Out of blocks: preempt the latest-admitted running request (possibly this one).
      Request* victim = running_.back();
      running_.pop_back();
      preempt(victim);
      preempted.push_back(victim);
      out.preempted_req_ids.push_back(victim->request_id());
      if (victim == request) {
        can_schedule = false;
        break;
      }
    }
    if (!can_schedule) break;
    pending.push_back({request, num_new_tokens, false});
    token_budget -= num_new_tokens;
    ++req_index;
  }

  // 2. Waiting requests, FCFS, unless this step had to preempt (memory is tight).
  if (preempted.empty()) {
    while (!waiting_.empty() && token_budget > 0 && num_running() < config_.max_num_seqs) {
      Request* request = waiting_.front();
      auto [computed_blocks, num_new_computed_tokens] = kv_cache_manager_->get_computed_blocks(*request);
      const int32_t num_new_tokens = std::min(request->num_tokens() - num_new_computed_tokens, token_budget);
      if (!kv_cache_manager_->allocate_slots(*request, num_new_tokens, num_new_computed_tokens,
                                             computed_blocks))
        break;
      waiting_.pop_front();
      running_.push_back(request);
      request->status = RequestStatus::kRunning;
      request->num_computed_tokens = num_new_computed_tokens;
      if (request->num_cached_tokens < 0) {
        request->num_cached_tokens = num_new_computed_tokens;
        kv_cache_manager_->record_prefix_cache_lookup(*request, num_new_computed_tokens);
      }
      pending.push_back({request, num_new_tokens, true});
      token_budget -= num_new_tokens;
    }
  }

  // 3. Describe the step, then advance num_computed_tokens (vLLM: _update_after_schedule).
  out.num_kv_blocks = kv_cache_manager_->block_pool().num_blocks();
  out.scheduled.reserve(pending.size());
  for (const Pending& p : pending) {
    Request& r = *p.request;
    ScheduledRequest s;
    s.request = &r;
    s.num_computed_tokens = r.num_computed_tokens;
    s.token_ids.assign(r.all_token_ids().begin() + r.num_computed_tokens,
                       r.all_token_ids().begin() + r.num_computed_tokens + p.num_new_tokens);
    s.positions.resize(static_cast<size_t>(p.num_new_tokens));
    for (int32_t i = 0; i < p.num_new_tokens; ++i)
      s.positions[static_cast<size_t>(i)] = r.num_computed_tokens + i;
    if (kv_cache_manager_->num_groups() > 1) {
      s.group_block_ids = kv_cache_manager_->get_group_block_ids(r.request_id());
      s.block_ids = s.group_block_ids[0];
    } else {
      s.block_ids = kv_cache_manager_->get_block_ids(r.request_id());
    }
    s.is_new = p.is_new;
    s.resumed = p.is_new && r.num_preemptions > 0;
    s.sample = r.num_computed_tokens + p.num_new_tokens == r.num_tokens();
    out.total_num_scheduled_tokens += p.num_new_tokens;
    r.num_computed_tokens += p.num_new_tokens;
    out.scheduled.push_back(std::move(s));
  }
  return out;
}

bool Scheduler::check_stop(Request& request, int32_t last_token_id) const {
  const SamplingParams& params = request.sampling_params();
  if (request.num_output_tokens() >= params.min_tokens) {
    const auto& eos = request.eos_token_ids();
    if (!params.ignore_eos && std::find(eos.begin(), eos.end(), last_token_id) != eos.end()) {
      request.status = RequestStatus::kFinishedStopped;
      return true;
    }
    const auto& stops = params.stop_token_ids;
    if (std::find(stops.begin(), stops.end(), last_token_id) != stops.end()) {
      request.status = RequestStatus::kFinishedStopped;
      request.stop_reason = last_token_id;
      return true;
    }
  }
  if (request.num_tokens() >= config_.max_model_len || request.num_output_tokens() >= params.max_tokens) {
    request.status = RequestStatus::kFinishedLengthCapped;
    return true;
  }
  return false;
}

void Scheduler::count_finished(RequestStatus status) {
  switch (status) {
    case RequestStatus::kFinishedStopped:
      ++stats_.num_finished_stop;
      break;
    case RequestStatus::kFinishedLengthCapped:
      ++stats_.num_finished_length;
      break;
    case RequestStatus::kFinishedAborted:
      ++stats_.num_finished_abort;
      break;
    case RequestStatus::kFinishedError:
      ++stats_.num_finished_error;
      break;
    default:
      break;
  }
}

EngineCoreOutput Scheduler::make_output(const Request& request) {
  EngineCoreOutput o;
  o.request_id = request.request_id();
  o.num_prompt_tokens = request.num_prompt_tokens();
  o.num_cached_tokens = std::max(0, request.num_cached_tokens);
  o.finish_reason = finish_reason_of(request.status);
  o.stop_reason = request.stop_reason;
  o.error_message = request.error_message;
  return o;
}

void Scheduler::remove_finished(Request* request) {
  kv_cache_manager_->free(*request);
  finished_req_ids_.push_back(request->request_id());
  count_finished(request->status);
  requests_.erase(request->request_id());  // destroys *request
}

std::vector<EngineCoreOutput> Scheduler::finish_requests(const std::vector<std::string>& request_ids,
                                                         RequestStatus finished_status,
                                                         const std::string& error_message) {
  NIBBLE_CHECK(is_finished(finished_status), "finish_requests with a non-final status");
  std::vector<EngineCoreOutput> outputs;
  for (const std::string& id : request_ids) {
    auto it = requests_.find(id);
    if (it == requests_.end()) continue;
    Request* request = it->second.get();
    if (request->status == RequestStatus::kRunning) {
      running_.erase(std::find(running_.begin(), running_.end(), request));
    } else {
      waiting_.erase(std::find(waiting_.begin(), waiting_.end(), request));
    }
    request->status = finished_status;
    request->error_message = error_message;
    outputs.push_back(make_output(*request));
    remove_finished(request);
  }
  return outputs;
}

std::vector<EngineCoreOutput> Scheduler::update_from_output(const SchedulerOutput& scheduler_output,
                                                            const ModelRunnerOutput& model_runner_output) {
  std::vector<EngineCoreOutput> outputs;
  const auto& scheduled = scheduler_output.scheduled;
  NIBBLE_CHECK(model_runner_output.sampled_token_ids.size() == scheduled.size(),
               "model runner output does not match the scheduled batch");
  std::vector<Request*> finished;
  for (size_t i = 0; i < scheduled.size(); ++i) {
    auto it = requests_.find(scheduled[i].request_id());
    if (it == requests_.end()) continue;
    Request& request = *it->second;
    if (request.status != RequestStatus::kRunning) continue;
    kv_cache_manager_->cache_blocks(request, request.num_computed_tokens);
    if (!scheduled[i].sample) continue;
    const auto& sampled = model_runner_output.sampled_token_ids[i];
    NIBBLE_CHECK(!sampled.empty(), "no token sampled for request " + request.request_id());
    const std::vector<TokenLogprobs>* logprobs =
        i < model_runner_output.logprobs.size() && !model_runner_output.logprobs[i].empty()
            ? &model_runner_output.logprobs[i]
            : nullptr;
    EngineCoreOutput o;
    bool stopped = false;
    for (size_t k = 0; k < sampled.size() && !stopped; ++k) {
      request.append_output_token_ids(sampled[k]);
      o.new_token_ids.push_back(sampled[k]);
      if (logprobs && k < logprobs->size()) o.new_logprobs.push_back((*logprobs)[k]);
      ++stats_.num_generation_tokens;
      if (request.num_output_tokens() == 1) stats_.num_prompt_tokens += request.num_prompt_tokens();
      stopped = check_stop(request, sampled[k]);
    }
    EngineCoreOutput head = make_output(request);
    head.new_token_ids = std::move(o.new_token_ids);
    head.new_logprobs = std::move(o.new_logprobs);
    outputs.push_back(std::move(head));
    if (stopped) finished.push_back(&request);
  }
  for (Request* request : finished) {
    running_.erase(std::find(running_.begin(), running_.end(), request));
    remove_finished(request);
  }
  return outputs;
}

SchedulerStats Scheduler::make_stats() {
  const PrefixCacheStats delta = kv_cache_manager_->make_prefix_cache_stats();
  stats_.prefix_cache.requests += delta.requests;
  stats_.prefix_cache.queries += delta.queries;
  stats_.prefix_cache.hits += delta.hits;
  SchedulerStats out = stats_;
  out.num_running = num_running();
  out.num_waiting = num_waiting();
  const BlockPool& pool = kv_cache_manager_->block_pool();
  out.kv_cache_usage = pool.get_usage();
  out.kv_num_blocks = pool.num_blocks();
  out.kv_num_free_blocks = pool.get_num_free_blocks();
  out.kv_max_num_blocks = kv_cache_manager_->max_num_blocks();
  return out;
}

}  // namespace nibble::engine
