// Shared helpers for the engine tests: the "run alone" oracle and the per-step invariants.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/fake_model_runner.h"
#include "engine/scheduler.h"

namespace nibble::engine::testing {

struct ReferenceResult {
  std::vector<int32_t> output_token_ids;
  FinishReason finish_reason = FinishReason::kLength;
};

// What a request must produce with the FakeModelRunner, computed without any engine code.
inline ReferenceResult reference_generate(const std::vector<int32_t>& prompt, const SamplingParams& params,
                                          const std::vector<int32_t>& eos_token_ids, int32_t max_model_len,
                                          int32_t vocab_size,
                                          const std::vector<int32_t>& group_windows = {}) {
  ReferenceResult r;
  std::vector<int32_t> tokens = prompt;
  for (;;) {
    const int32_t t = FakeModelRunner::reference_next_token(tokens, vocab_size, group_windows);
    tokens.push_back(t);
    r.output_token_ids.push_back(t);
    const auto n = static_cast<int32_t>(r.output_token_ids.size());
    const bool eos = std::find(eos_token_ids.begin(), eos_token_ids.end(), t) != eos_token_ids.end();
    const bool stop = std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(), t) !=
                      params.stop_token_ids.end();
    if (n >= params.min_tokens && ((eos && !params.ignore_eos) || stop)) {
      r.finish_reason = FinishReason::kStop;
      return r;
    }
    if (n >= params.max_tokens || static_cast<int32_t>(tokens.size()) >= max_model_len) {
      r.finish_reason = FinishReason::kLength;
      return r;
    }
  }
}

// Checks the block-accounting invariants; returns a description of the first violation or "".
inline std::string check_invariants(const Scheduler& scheduler) {
  const KVCacheManager& kv = scheduler.kv_cache_manager();
  const BlockPool& pool = kv.block_pool();
  int64_t sum_ref = 0, num_free = 0, num_hashed = 0;
  for (int32_t id = 0; id < pool.num_blocks(); ++id) {
    const KVCacheBlock& b = pool.block(id);
    if (b.block_id != id) return "block id mismatch at " + std::to_string(id);
    if (b.ref_cnt < 0) return "negative ref count on block " + std::to_string(id);
    if ((b.ref_cnt == 0) != b.in_free_queue)
      return "block " + std::to_string(id) + " free-queue state disagrees with ref count";
    sum_ref += b.ref_cnt;
    num_free += b.ref_cnt == 0;
    num_hashed += b.block_hash.has_value();
    if (b.block_hash && pool.get_cached_block(*b.block_hash) != &b)
      return "hashed block not in the cache map";
  }
  if (num_free != pool.get_num_free_blocks()) return "free queue length != blocks with ref 0";
  if (static_cast<int64_t>(pool.free_queue_snapshot().size()) != num_free) return "free queue links broken";
  if (num_hashed != pool.num_cached_blocks()) return "cache map size != hashed blocks";
  // Every reference comes from a running request's block table; waiting requests hold nothing.
  int64_t table_refs = 0;
  std::map<int32_t, int32_t> refs_by_block;
  for (const Request* r : scheduler.running()) {
    if (!kv.get_blocks(r->request_id())) return "running request " + r->request_id() + " has no blocks";
    for (int32_t g = 0; g < kv.num_groups(); ++g) {
      const KVCacheBlocks* blocks = kv.get_blocks(r->request_id(), g);
      if (!blocks)
        return "running request " + r->request_id() + " lacks the table of group " + std::to_string(g);
      if (static_cast<int64_t>(blocks->size()) * kv.block_size() < r->num_computed_tokens)
        return "request " + r->request_id() + " computed more tokens than its blocks hold";
      const KVCacheGroupSpec& spec = kv.groups()[static_cast<size_t>(g)];
      for (size_t i = 0; i < blocks->size(); ++i) {
        const KVCacheBlock* b = (*blocks)[i];
        if (b == nullptr) {
          // Only a sliding window frees blocks, and only those wholly before the last token's window.
          const int64_t block_end = static_cast<int64_t>(i + 1) * kv.block_size();
          if (spec.kind != AttentionKind::kSlidingWindow ||
              block_end > r->num_computed_tokens - spec.sliding_window_tokens + 1)
            return "request " + r->request_id() + " lost block " + std::to_string(i) + " of group " +
                   std::to_string(g) + " it may still read";
          continue;
        }
        ++table_refs;
        ++refs_by_block[b->block_id];
      }
    }
  }
  for (const Request* r : scheduler.waiting()) {
    if (kv.get_blocks(r->request_id())) return "waiting request " + r->request_id() + " holds blocks";
    if (r->num_computed_tokens != 0) return "waiting request " + r->request_id() + " has computed tokens";
  }
  if (kv.num_requests_with_blocks() != scheduler.num_running())
    return "block tables for non-running requests";
  if (table_refs != sum_ref)
    return "sum of ref counts " + std::to_string(sum_ref) + " != block-table entries " +
           std::to_string(table_refs);
  for (const auto& [id, n] : refs_by_block)
    if (pool.block(id).ref_cnt != n)
      return "block " + std::to_string(id) + " ref count != its block-table uses";
  if (scheduler.num_running() > scheduler.config().max_num_seqs) return "more running than max_num_seqs";
  return "";
}

// Collects a scheduler's outputs per request (tests driving the Scheduler directly).
struct Collected {
  std::vector<int32_t> tokens;
  std::optional<FinishReason> finish_reason;
  int32_t num_cached_tokens = 0;
};

inline void collect(std::map<std::string, Collected>& into, const std::vector<EngineCoreOutput>& outputs) {
  for (const EngineCoreOutput& o : outputs) {
    Collected& c = into[o.request_id];
    c.tokens.insert(c.tokens.end(), o.new_token_ids.begin(), o.new_token_ids.end());
    if (o.finish_reason) c.finish_reason = o.finish_reason;
    c.num_cached_tokens = o.num_cached_tokens;
  }
}

// A scheduler over a fixed pool of `num_blocks`.
inline std::unique_ptr<Scheduler> make_scheduler(const SchedulerConfig& config, int32_t num_blocks,
                                                 int32_t block_size, bool enable_caching = true) {
  KVCacheConfig kv;
  kv.block_size_tokens = block_size;
  kv.num_blocks = num_blocks;
  kv.max_num_blocks = num_blocks;
  auto manager = KVCacheManager::create(kv, config.max_model_len, enable_caching);
  return std::make_unique<Scheduler>(config, std::move(manager).value());
}

// One engine step with the fake runner; returns the outputs.
inline std::vector<EngineCoreOutput> step(Scheduler& scheduler, FakeModelRunner& runner) {
  SchedulerOutput so = scheduler.schedule();
  if (so.empty()) return {};
  auto result = runner.execute_model(so);
  return scheduler.update_from_output(so, result.value());
}

}  // namespace nibble::engine::testing
