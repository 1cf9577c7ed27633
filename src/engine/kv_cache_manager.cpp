#include "engine/kv_cache_manager.h"

#include <algorithm>

namespace nibble::engine {

base::Result<std::unique_ptr<KVCacheManager>> KVCacheManager::create(const KVCacheConfig& config,
                                                                     int32_t max_model_len,
                                                                     bool enable_caching) {
  if (config.block_size_tokens <= 0)
    return base::invalid_argument("kv cache: block_size must be positive, got " +
                                  std::to_string(config.block_size_tokens));
  if (config.num_blocks < 0 || config.max_num_blocks < config.num_blocks)
    return base::invalid_argument("kv cache: need 0 <= num_blocks (" + std::to_string(config.num_blocks) +
                                  ") <= max_num_blocks (" + std::to_string(config.max_num_blocks) + ")");
  if (max_model_len <= 0) return base::invalid_argument("max_model_len must be positive");
  for (size_t g = 0; g < config.groups.size(); ++g) {
    const KVCacheGroupSpec& group = config.groups[g];
    if (group.kind == AttentionKind::kSlidingWindow && group.sliding_window_tokens < 1)
      return base::invalid_argument("kv cache: group " + std::to_string(g) +
                                    " is sliding-window with a window of " +
                                    std::to_string(group.sliding_window_tokens) + " tokens");
  }
  return std::unique_ptr<KVCacheManager>(new KVCacheManager(config, max_model_len, enable_caching));
}

KVCacheManager::KVCacheManager(const KVCacheConfig& config, int32_t max_model_len, bool enable_caching)
    : block_size_(config.block_size_tokens),
      max_model_len_(max_model_len),
      max_num_blocks_(config.max_num_blocks),
      groups_(config.groups),
      enable_caching_(enable_caching && config.groups.size() <= 1 &&
                      (config.groups.empty() || config.groups[0].kind == AttentionKind::kFullAttention)),
      block_pool_(config.num_blocks, enable_caching_) {
  if (groups_.empty()) groups_.push_back(KVCacheGroupSpec{});
}

int64_t KVCacheManager::max_blocks_per_request(int64_t num_tokens, int64_t max_step_tokens) const {
  return engine::max_blocks_per_request(groups_, block_size_, num_tokens, max_step_tokens);
}

void KVCacheManager::free_out_of_window(KVCacheBlocks& table, const KVCacheGroupSpec& group,
                                        int32_t first_query_pos) {
  if (group.kind != AttentionKind::kSlidingWindow) return;
  // Query position p sees keys p - window + 1 .. p: blocks wholly below the first query's window go.
  const int32_t first_visible = std::max(0, first_query_pos - group.sliding_window_tokens + 1);
  const auto num_dead = std::min(static_cast<size_t>(first_visible / block_size_), table.size());
  KVCacheBlocks dead;
  for (size_t i = num_dead; i-- > 0;) {  // tail first, as free() does
    if (table[i] == nullptr) break;      // everything before is freed already
    dead.push_back(table[i]);
    table[i] = nullptr;
  }
  if (!dead.empty()) block_pool_.free_blocks(dead);
}

std::pair<KVCacheBlocks, int32_t> KVCacheManager::get_computed_blocks(Request& request) {
  if (!enable_caching_ || request.skip_prefix_cache()) return {{}, 0};
  request.update_block_hashes(block_size_);
  // At least the last token must be computed to produce logits.
  const int32_t max_cache_hit_blocks = (request.num_tokens() - 1) / block_size_;
  KVCacheBlocks hits;
  const auto& hashes = request.block_hashes();
  for (int32_t i = 0; i < max_cache_hit_blocks; ++i) {
    KVCacheBlock* block = block_pool_.get_cached_block(hashes[static_cast<size_t>(i)]);
    if (!block) break;
    hits.push_back(block);
  }
  const int32_t num_computed_tokens = static_cast<int32_t>(hits.size()) * block_size_;
  return {std::move(hits), num_computed_tokens};
}

void KVCacheManager::record_prefix_cache_lookup(const Request& request, int32_t num_hit_tokens) {
  if (!enable_caching_ || request.skip_prefix_cache()) return;
  ++prefix_cache_stats_.requests;
  prefix_cache_stats_.queries += request.num_tokens();
  prefix_cache_stats_.hits += num_hit_tokens;
}

std::optional<KVCacheBlocks> KVCacheManager::allocate_slots(Request& request, int32_t num_new_tokens,
                                                            int32_t num_new_computed_tokens,
                                                            const KVCacheBlocks& new_computed_blocks) {
  NIBBLE_CHECK(num_new_tokens >= 0 && num_new_computed_tokens >= 0, "negative token counts");
  NIBBLE_CHECK(num_new_computed_tokens == static_cast<int32_t>(new_computed_blocks.size()) * block_size_,
               "computed tokens do not match computed blocks");
  NIBBLE_CHECK(new_computed_blocks.empty() || groups_.size() == 1, "prefix-cache hits with several groups");
  const size_t num_groups = groups_.size();
  auto [it, inserted] = req_to_blocks_.try_emplace(request.request_id());
  std::vector<KVCacheBlocks>& tables = it->second;
  if (inserted) tables.resize(num_groups);
  const int32_t num_computed_tokens = request.num_computed_tokens + num_new_computed_tokens;
  const int32_t num_tokens_need_slot = std::min(num_computed_tokens + num_new_tokens, max_model_len_);
  const int32_t num_required_blocks = cdiv(num_tokens_need_slot, block_size_);
  // Blocks that slid out of a window are never read again: give them back before counting.
  for (size_t g = 0; g < num_groups; ++g) free_out_of_window(tables[g], groups_[g], num_computed_tokens);
  int32_t num_new_blocks = 0;
  std::vector<int32_t> group_new_blocks(num_groups, 0);
  for (size_t g = 0; g < num_groups; ++g) {
    const auto held = static_cast<int32_t>(tables[g].size() + (g == 0 ? new_computed_blocks.size() : 0));
    group_new_blocks[g] = std::max(0, num_required_blocks - held);
    num_new_blocks += group_new_blocks[g];
  }
  // Free cached blocks that this request is about to claim cannot also serve as new blocks.
  const int32_t num_evictable_computed =
      static_cast<int32_t>(std::count_if(new_computed_blocks.begin(), new_computed_blocks.end(),
                                         [](const KVCacheBlock* b) { return b->ref_cnt == 0; }));
  const int32_t num_needed = num_new_blocks + num_evictable_computed;
  if (num_needed > block_pool_.get_num_free_blocks() && grow_fn_) {
    const int32_t short_by = num_needed - block_pool_.get_num_free_blocks();
    const int32_t added = grow_fn_(block_pool_.num_blocks(), short_by);
    if (added > 0) block_pool_.grow(added);
  }
  if (num_needed > block_pool_.get_num_free_blocks()) {
    const bool holds_nothing =
        std::all_of(tables.begin(), tables.end(), [](const KVCacheBlocks& t) { return t.empty(); });
    if (holds_nothing) req_to_blocks_.erase(it);
    return std::nullopt;
  }
  if (!new_computed_blocks.empty()) {
    block_pool_.touch(new_computed_blocks);
    tables[0].insert(tables[0].end(), new_computed_blocks.begin(), new_computed_blocks.end());
    // Prefix hits are registered already; cache_blocks must not revisit them.
    num_cached_block_[request.request_id()] = static_cast<int32_t>(tables[0].size());
  }
  KVCacheBlocks all_new;
  for (size_t g = 0; g < num_groups; ++g) {
    KVCacheBlocks new_blocks = block_pool_.get_new_blocks(group_new_blocks[g]);
    tables[g].insert(tables[g].end(), new_blocks.begin(), new_blocks.end());
    all_new.insert(all_new.end(), new_blocks.begin(), new_blocks.end());
  }
  return all_new;
}

void KVCacheManager::cache_blocks(Request& request, int32_t num_computed_tokens) {
  if (!enable_caching_) return;
  auto it = req_to_blocks_.find(request.request_id());
  if (it == req_to_blocks_.end()) return;
  request.update_block_hashes(block_size_);
  const int32_t num_full_blocks =
      std::min({num_computed_tokens / block_size_, static_cast<int32_t>(it->second[0].size()),
                static_cast<int32_t>(request.block_hashes().size())});
  int32_t& num_cached = num_cached_block_[request.request_id()];
  if (num_full_blocks <= num_cached) return;
  block_pool_.cache_full_blocks(it->second[0], request.block_hashes(), num_cached, num_full_blocks);
  num_cached = num_full_blocks;
}

void KVCacheManager::free(Request& request) {
  auto it = req_to_blocks_.find(request.request_id());
  if (it != req_to_blocks_.end()) {
    for (const KVCacheBlocks& table : it->second) {
      KVCacheBlocks reversed;
      reversed.reserve(table.size());
      for (auto b = table.rbegin(); b != table.rend(); ++b)
        if (*b != nullptr) reversed.push_back(*b);
      block_pool_.free_blocks(reversed);
    }
    req_to_blocks_.erase(it);
  }
  num_cached_block_.erase(request.request_id());
}

std::vector<int32_t> KVCacheManager::get_block_ids(const std::string& request_id) const {
  std::vector<int32_t> ids;
  if (const KVCacheBlocks* blocks = get_blocks(request_id)) {
    ids.reserve(blocks->size());
    for (const KVCacheBlock* b : *blocks) ids.push_back(b ? b->block_id : kNullBlockId);
  }
  return ids;
}

std::vector<std::vector<int32_t>> KVCacheManager::get_group_block_ids(const std::string& request_id) const {
  std::vector<std::vector<int32_t>> out;
  auto it = req_to_blocks_.find(request_id);
  if (it == req_to_blocks_.end()) return out;
  out.resize(it->second.size());
  for (size_t g = 0; g < it->second.size(); ++g) {
    out[g].reserve(it->second[g].size());
    for (const KVCacheBlock* b : it->second[g]) out[g].push_back(b ? b->block_id : kNullBlockId);
  }
  return out;
}

const KVCacheBlocks* KVCacheManager::get_blocks(const std::string& request_id, int32_t group) const {
  auto it = req_to_blocks_.find(request_id);
  if (it == req_to_blocks_.end() || group < 0 || group >= static_cast<int32_t>(it->second.size()))
    return nullptr;
  return &it->second[static_cast<size_t>(group)];
}

PrefixCacheStats KVCacheManager::make_prefix_cache_stats() {
  PrefixCacheStats out = prefix_cache_stats_;
  prefix_cache_stats_ = {};
  return out;
}

int32_t KVCacheManager::shrink(int32_t max_blocks_to_remove, int32_t min_num_blocks) {
  const int32_t removable = std::min({max_blocks_to_remove, block_pool_.num_free_tail_blocks(),
                                      std::max(0, block_pool_.num_blocks() - min_num_blocks)});
  if (removable <= 0) return 0;
  block_pool_.shrink(removable);
  return removable;
}

}  // namespace nibble::engine
