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
  if (config.groups.size() > 1)
    return base::unsupported("kv cache: " + std::to_string(config.groups.size()) +
                             " layer groups; only one KV cache group is implemented");
  if (!config.groups.empty() && config.groups[0].kind != AttentionKind::kFullAttention)
    return base::unsupported(
        "kv cache: sliding-window groups are not implemented; describe them as full attention");
  return std::unique_ptr<KVCacheManager>(new KVCacheManager(config, max_model_len, enable_caching));
}

KVCacheManager::KVCacheManager(const KVCacheConfig& config, int32_t max_model_len, bool enable_caching)
    : block_size_(config.block_size_tokens),
      max_model_len_(max_model_len),
      max_num_blocks_(config.max_num_blocks),
      enable_caching_(enable_caching),
      block_pool_(config.num_blocks, enable_caching) {}

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
  KVCacheBlocks& req_blocks = req_to_blocks_[request.request_id()];
  const int32_t num_computed_tokens = request.num_computed_tokens + num_new_computed_tokens;
  const int32_t num_tokens_need_slot = std::min(num_computed_tokens + num_new_tokens, max_model_len_);
  const int32_t num_required_blocks = cdiv(num_tokens_need_slot, block_size_);
  const int32_t num_new_blocks = std::max(0, num_required_blocks - static_cast<int32_t>(req_blocks.size()) -
                                                 static_cast<int32_t>(new_computed_blocks.size()));
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
    if (req_blocks.empty()) req_to_blocks_.erase(request.request_id());
    return std::nullopt;
  }
  if (!new_computed_blocks.empty()) {
    block_pool_.touch(new_computed_blocks);
    req_blocks.insert(req_blocks.end(), new_computed_blocks.begin(), new_computed_blocks.end());
    // Prefix hits are registered already; cache_blocks must not revisit them.
    num_cached_block_[request.request_id()] = static_cast<int32_t>(req_blocks.size());
  }
  KVCacheBlocks new_blocks = block_pool_.get_new_blocks(num_new_blocks);
  req_blocks.insert(req_blocks.end(), new_blocks.begin(), new_blocks.end());
  return new_blocks;
}

void KVCacheManager::cache_blocks(Request& request, int32_t num_computed_tokens) {
  if (!enable_caching_) return;
  auto it = req_to_blocks_.find(request.request_id());
  if (it == req_to_blocks_.end()) return;
  request.update_block_hashes(block_size_);
  const int32_t num_full_blocks =
      std::min({num_computed_tokens / block_size_, static_cast<int32_t>(it->second.size()),
                static_cast<int32_t>(request.block_hashes().size())});
  int32_t& num_cached = num_cached_block_[request.request_id()];
  if (num_full_blocks <= num_cached) return;
  block_pool_.cache_full_blocks(it->second, request.block_hashes(), num_cached, num_full_blocks);
  num_cached = num_full_blocks;
}

void KVCacheManager::free(Request& request) {
  auto it = req_to_blocks_.find(request.request_id());
  if (it != req_to_blocks_.end()) {
    KVCacheBlocks reversed(it->second.rbegin(), it->second.rend());
    block_pool_.free_blocks(reversed);
    req_to_blocks_.erase(it);
  }
  num_cached_block_.erase(request.request_id());
}

std::vector<int32_t> KVCacheManager::get_block_ids(const std::string& request_id) const {
  std::vector<int32_t> ids;
  if (const KVCacheBlocks* blocks = get_blocks(request_id)) {
    ids.reserve(blocks->size());
    for (const KVCacheBlock* b : *blocks) ids.push_back(b->block_id);
  }
  return ids;
}

const KVCacheBlocks* KVCacheManager::get_blocks(const std::string& request_id) const {
  auto it = req_to_blocks_.find(request_id);
  return it == req_to_blocks_.end() ? nullptr : &it->second;
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
