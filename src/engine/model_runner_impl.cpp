#include "engine/model_runner_impl.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace nibble::engine {

KvLayerMap KvLayerMap::make(int32_t num_layers, const std::vector<KVCacheGroupSpec>& groups) {
  KvLayerMap m;
  m.group.assign(static_cast<size_t>(num_layers), 0);
  m.slot.resize(static_cast<size_t>(num_layers));
  if (groups.empty()) {
    for (int32_t l = 0; l < num_layers; ++l) m.slot[static_cast<size_t>(l)] = l;
    m.layers_per_block = num_layers;
    return m;
  }
  NIBBLE_CHECK(static_cast<int32_t>(groups.size()) <= kMaxKvCacheGroups, "too many KV cache groups");
  std::vector<bool> seen(static_cast<size_t>(num_layers), false);
  m.num_groups = static_cast<int32_t>(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& ids = groups[g].layer_ids;
    for (size_t i = 0; i < ids.size(); ++i) {
      NIBBLE_CHECK(ids[i] >= 0 && ids[i] < num_layers && !seen[static_cast<size_t>(ids[i])],
                   "KV cache groups must cover each layer once");
      seen[static_cast<size_t>(ids[i])] = true;
      m.group[static_cast<size_t>(ids[i])] = static_cast<int32_t>(g);
      m.slot[static_cast<size_t>(ids[i])] = static_cast<int32_t>(i);
    }
    m.layers_per_block = std::max(m.layers_per_block, static_cast<int32_t>(ids.size()));
  }
  NIBBLE_CHECK(std::all_of(seen.begin(), seen.end(), [](bool b) { return b; }),
               "KV cache groups must cover each layer once");
  return m;
}

PagedKvCache::PagedKvCache(PagedKvStorage* storage, const KvLayerMap* layers,
                           const ScheduledRequest& scheduled)
    : storage_(storage), layers_(layers) {
  if (layers->num_groups > 1) {
    NIBBLE_CHECK(static_cast<int32_t>(scheduled.group_block_ids.size()) == layers->num_groups,
                 "scheduled request without a block table per KV cache group");
    for (int32_t g = 0; g < layers->num_groups; ++g)
      tables_[g] = scheduled.group_block_ids[static_cast<size_t>(g)];
  } else {
    tables_[0] = scheduled.block_ids;
  }
  max_positions_ = static_cast<int64_t>(tables_[0].size()) * storage->block_size();
}

LlmModelRunner::LlmModelRunner(std::unique_ptr<model::Model> model, int32_t block_size,
                               int32_t chunk_num_blocks, int32_t max_num_seqs, int32_t max_num_batched_tokens,
                               const std::vector<KVCacheGroupSpec>& kv_groups)
    : model_(std::move(model)),
      vocab_size_(model_->config().vocab_size),
      kv_layers_(KvLayerMap::make(static_cast<int32_t>(model_->config().num_hidden_layers), kv_groups)),
      storage_(kv_layers_.layers_per_block, static_cast<int32_t>(model_->config().num_key_value_heads),
               static_cast<int32_t>(model_->config().head_dim), block_size, std::max(chunk_num_blocks, 1)),
      seed_rng_(std::random_device{}()) {
  tokens_.reserve(static_cast<size_t>(max_num_batched_tokens));
  seqs_.reserve(static_cast<size_t>(max_num_seqs));
  caches_.reserve(static_cast<size_t>(max_num_seqs));
  logit_rows_.reserve(static_cast<size_t>(max_num_seqs));
  row_request_.reserve(static_cast<size_t>(max_num_seqs));
  logits_.resize(static_cast<size_t>(vocab_size_));
  samplers_.reserve(static_cast<size_t>(max_num_seqs) * 2);
}

LlmModelRunner::~LlmModelRunner() = default;

base::Status LlmModelRunner::set_num_kv_blocks(int32_t num_blocks) {
  return storage_.resize(num_blocks);
}

Sampler& LlmModelRunner::sampler_for(const ScheduledRequest& scheduled) {
  auto it = samplers_.find(scheduled.request_id());
  // A fresh admission starts a fresh stream; a resumed (preempted) request keeps its sampler so
  // its random stream continues where it left off.
  if (it != samplers_.end() && scheduled.is_new && !scheduled.resumed) {
    samplers_.erase(it);
    it = samplers_.end();
  }
  if (it == samplers_.end()) {
    SamplingParams params = scheduled.request->sampling_params();
    if (!params.seed) params.seed = seed_rng_();
    it = samplers_.emplace(scheduled.request_id(), std::make_unique<Sampler>(vocab_size_, params)).first;
  }
  return *it->second;
}

void LlmModelRunner::compute_logprobs(const float* logits, int32_t token, int32_t num_top,
                                      TokenLogprobs& out) {
  float max_logit = -std::numeric_limits<float>::infinity();
  for (int64_t v = 0; v < vocab_size_; ++v) max_logit = std::max(max_logit, logits[v]);
  double sum = 0.0;
  for (int64_t v = 0; v < vocab_size_; ++v) sum += std::exp(static_cast<double>(logits[v] - max_logit));
  const double log_z = static_cast<double>(max_logit) + std::log(sum);
  out.sampled = {token, static_cast<float>(static_cast<double>(logits[token]) - log_z)};
  out.top.clear();
  if (num_top <= 0) return;
  // Keep the num_top largest in top_, sorted descending (ties: lower id first).
  top_.clear();
  const auto k = static_cast<size_t>(std::min<int64_t>(num_top, vocab_size_));
  for (int64_t v = 0; v < vocab_size_; ++v) {
    const float l = logits[v];
    if (top_.size() == k && !(l > top_.back().first)) continue;
    auto pos =
        std::upper_bound(top_.begin(), top_.end(), l,
                         [](float value, const std::pair<float, int32_t>& e) { return value > e.first; });
    if (top_.size() == k) top_.pop_back();
    top_.insert(pos, {l, static_cast<int32_t>(v)});
  }
  out.top.reserve(top_.size());
  for (const auto& [l, id] : top_)
    out.top.push_back({id, static_cast<float>(static_cast<double>(l) - log_z)});
}

base::Result<ModelRunnerOutput> LlmModelRunner::execute_model(const SchedulerOutput& so) {
  for (const std::string& id : so.finished_req_ids) samplers_.erase(id);
  ModelRunnerOutput out;
  out.sampled_token_ids.resize(so.scheduled.size());
  bool any_logprobs = false;

  // Concatenate the step's tokens; one slice (and one paged cache view) per request.
  tokens_.clear();
  seqs_.clear();
  caches_.clear();
  logit_rows_.clear();
  row_request_.clear();
  for (size_t i = 0; i < so.scheduled.size(); ++i) {
    const ScheduledRequest& s = so.scheduled[i];
    if (s.num_scheduled_tokens() == 0) continue;
    if (s.request->sampling_params().logprobs) any_logprobs = true;
    caches_.emplace_back(&storage_, &kv_layers_, s);
    tokens_.insert(tokens_.end(), s.token_ids.begin(), s.token_ids.end());
    seqs_.push_back({s.num_scheduled_tokens(), s.num_computed_tokens, nullptr});
    if (s.sample) {
      logit_rows_.push_back(static_cast<int64_t>(tokens_.size()) - 1);
      row_request_.push_back(static_cast<int32_t>(i));
    }
  }
  if (any_logprobs) out.logprobs.resize(so.scheduled.size());
  if (seqs_.empty()) return out;
  for (size_t i = 0; i < seqs_.size(); ++i) seqs_[i].cache = &caches_[i];
  // Only non-final prefill chunks: the forward still needs one logits row; it is ignored.
  const bool dummy_row = logit_rows_.empty();
  if (dummy_row) logit_rows_.push_back(static_cast<int64_t>(tokens_.size()) - 1);
  NIBBLE_ASSIGN_OR_RETURN(std::span<const float> logits, model_->forward_batch(tokens_, seqs_, logit_rows_));
  if (dummy_row) return out;

  for (size_t r = 0; r < row_request_.size(); ++r) {
    const auto i = static_cast<size_t>(row_request_[r]);
    const ScheduledRequest& s = so.scheduled[i];
    const Request& req = *s.request;
    const SamplingParams& params = req.sampling_params();
    const float* row = logits.data() + static_cast<int64_t>(r) * vocab_size_;
    std::copy_n(row, vocab_size_, logits_.begin());
    // Before min_tokens, eos and stop token ids cannot be sampled (vLLM's MinTokensLogitsProcessor).
    if (req.num_output_tokens() < params.min_tokens) {
      constexpr float kBlocked = -std::numeric_limits<float>::infinity();
      if (!params.ignore_eos) {
        for (int32_t id : req.eos_token_ids())
          if (id >= 0 && id < vocab_size_) logits_[static_cast<size_t>(id)] = kBlocked;
      }
      for (int32_t id : params.stop_token_ids)
        if (id >= 0 && id < vocab_size_) logits_[static_cast<size_t>(id)] = kBlocked;
    }
    Sampler& sampler = sampler_for(s);
    const int32_t token = sampler.sample(logits_, req.prompt_token_ids(), req.output_token_ids());
    out.sampled_token_ids[i].push_back(token);
    if (params.logprobs) {
      TokenLogprobs lp;
      compute_logprobs(row, token, *params.logprobs, lp);
      out.logprobs[i].push_back(std::move(lp));
    }
  }
  return out;
}

}  // namespace nibble::engine
