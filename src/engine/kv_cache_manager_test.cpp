#include "engine/kv_cache_manager.h"

#include <gtest/gtest.h>

#include <numeric>

namespace nibble::engine {
namespace {

constexpr int32_t kBlock = 4;

std::unique_ptr<KVCacheManager> make_manager(int32_t num_blocks, int32_t max_num_blocks = -1,
                                             bool caching = true) {
  KVCacheConfig c;
  c.block_size_tokens = kBlock;
  c.num_blocks = num_blocks;
  c.max_num_blocks = max_num_blocks < 0 ? num_blocks : max_num_blocks;
  return KVCacheManager::create(c, 1024, caching).value();
}

Request make_request(const std::string& id, std::vector<int32_t> prompt, std::vector<uint64_t> extra = {}) {
  EngineCoreRequest r;
  r.request_id = id;
  r.prompt_token_ids = std::move(prompt);
  r.cache_extra_keys = std::move(extra);
  return Request(std::move(r), {}, 0);
}

std::vector<int32_t> iota_tokens(int32_t n, int32_t start = 100) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

// Admits a request as the scheduler would: prefix lookup, allocation, compute everything.
int32_t admit_and_compute(KVCacheManager& kv, Request& r) {
  auto [blocks, num_computed] = kv.get_computed_blocks(r);
  auto ok = kv.allocate_slots(r, r.num_tokens() - num_computed, num_computed, blocks);
  EXPECT_TRUE(ok.has_value());
  r.num_computed_tokens = r.num_tokens();
  kv.cache_blocks(r, r.num_computed_tokens);
  return num_computed;
}

TEST(KVCacheManager, CreateRejectsBadConfigs) {
  KVCacheConfig c;
  c.block_size_tokens = 0;
  EXPECT_FALSE(KVCacheManager::create(c, 16, true).ok());
  c.block_size_tokens = 16;
  c.num_blocks = 4;
  c.max_num_blocks = 2;
  EXPECT_FALSE(KVCacheManager::create(c, 16, true).ok());
  c.max_num_blocks = 4;
  c.groups.push_back({{0}, AttentionKind::kSlidingWindow, 0});
  auto r = KVCacheManager::create(c, 16, true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), base::ErrorCode::kInvalidArgument);
  c.groups[0].sliding_window_tokens = 128;
  EXPECT_TRUE(KVCacheManager::create(c, 16, true).ok());
}

// Two groups (full + a sliding window of 6 tokens, block size 4): each request gets one table per
// group; the sliding group frees blocks wholly before the window of the step's first query.
TEST(KVCacheManager, SlidingWindowGroupFreesBlocksOutsideTheWindow) {
  KVCacheConfig c;
  c.block_size_tokens = kBlock;
  c.num_blocks = c.max_num_blocks = 16;
  c.groups = {{{0}, AttentionKind::kFullAttention, 0}, {{1}, AttentionKind::kSlidingWindow, 6}};
  auto kv = KVCacheManager::create(c, 1024, /*enable_caching=*/true).value();
  Request r = make_request("a", iota_tokens(10));
  auto [hits, num_hit] = kv->get_computed_blocks(r);
  EXPECT_EQ(num_hit, 0);                   // prefix caching is off with a sliding-window group
  ASSERT_TRUE(kv->allocate_slots(r, 10));  // 3 blocks per group
  EXPECT_EQ(kv->block_pool().get_num_free_blocks(), 10);
  r.num_computed_tokens = 10;
  // The next query (position 10) sees keys 5..10: block 0 (positions 0..3) goes, block 1 stays.
  ASSERT_TRUE(kv->allocate_slots(r, 1));
  auto tables = kv->get_group_block_ids("a");
  ASSERT_EQ(tables.size(), 2u);
  EXPECT_EQ(tables[0].size(), 3u);
  EXPECT_EQ(tables[1][0], kNullBlockId);
  EXPECT_NE(tables[1][1], kNullBlockId);
  EXPECT_EQ(kv->block_pool().get_num_free_blocks(), 11);
  r.num_computed_tokens = 20;  // as if 9 more tokens ran: up to 21 slots, window from position 15
  ASSERT_TRUE(kv->allocate_slots(r, 1));
  tables = kv->get_group_block_ids("a");
  EXPECT_EQ(tables[0].size(), 6u);
  EXPECT_EQ(tables[1], (std::vector<int32_t>{kNullBlockId, kNullBlockId, kNullBlockId, tables[1][3],
                                             tables[1][4], tables[1][5]}));
  EXPECT_EQ(kv->block_pool().get_num_free_blocks(), 16 - 6 - 3);
  // A long request fits in a pool that its full-length tables would not: the cap counts the window.
  EXPECT_EQ(kv->max_blocks_per_request(1000, 8), 250 + 5);
  kv->free(r);
  EXPECT_EQ(kv->block_pool().get_num_free_blocks(), 16);
  for (int32_t id = 0; id < 16; ++id) EXPECT_EQ(kv->block_pool().block(id).ref_cnt, 0);
}

TEST(KVCacheManager, AllocatesCeilBlocksAndGrowsPerToken) {
  auto kv = make_manager(4);
  Request r = make_request("a", iota_tokens(5));
  auto blocks = kv->allocate_slots(r, 5);
  ASSERT_TRUE(blocks);
  EXPECT_EQ(blocks->size(), 2u);  // 5 tokens in 4-token blocks
  r.num_computed_tokens = 5;
  EXPECT_EQ(kv->allocate_slots(r, 3)->size(), 0u);  // up to 8 tokens: still 2 blocks
  r.num_computed_tokens = 8;
  EXPECT_EQ(kv->allocate_slots(r, 1)->size(), 1u);
  EXPECT_EQ(kv->get_block_ids("a"), (std::vector<int32_t>{0, 1, 2}));
  kv->free(r);
  EXPECT_EQ(kv->block_pool().get_num_free_blocks(), 4);
  EXPECT_EQ(kv->get_blocks("a"), nullptr);
}

TEST(KVCacheManager, OutOfBlocksChangesNothing) {
  auto kv = make_manager(2);
  Request a = make_request("a", iota_tokens(8));
  ASSERT_TRUE(kv->allocate_slots(a, 8));
  Request b = make_request("b", iota_tokens(4, 900));
  EXPECT_FALSE(kv->allocate_slots(b, 4));
  EXPECT_EQ(kv->get_blocks("b"), nullptr);
  EXPECT_EQ(kv->num_requests_with_blocks(), 1);
  EXPECT_EQ(kv->block_pool().get_num_free_blocks(), 0);
}

TEST(KVCacheManager, PrefixHitsSharedFullBlocksOnly) {
  auto kv = make_manager(16);
  Request a = make_request("a", iota_tokens(14));  // blocks [0,4) [4,8) [8,12) full, [12,14) partial
  EXPECT_EQ(admit_and_compute(*kv, a), 0);
  std::vector<int32_t> b_prompt = iota_tokens(10);  // shares two full blocks and 2 tokens of the third
  b_prompt.push_back(7);
  b_prompt.push_back(7);
  b_prompt.push_back(7);
  Request b = make_request("b", b_prompt);
  EXPECT_EQ(admit_and_compute(*kv, b), 8);
  const auto a_ids = kv->get_block_ids("a"), b_ids = kv->get_block_ids("b");
  EXPECT_EQ(a_ids[0], b_ids[0]);
  EXPECT_EQ(a_ids[1], b_ids[1]);
  EXPECT_NE(a_ids[2], b_ids[2]);
  EXPECT_EQ(kv->block_pool().block(a_ids[0]).ref_cnt, 2);
  const PrefixCacheStats none = kv->make_prefix_cache_stats();
  EXPECT_EQ(none.queries, 0);  // counting is the scheduler's call (record_prefix_cache_lookup)
  kv->record_prefix_cache_lookup(b, 8);
  const PrefixCacheStats s = kv->make_prefix_cache_stats();
  EXPECT_EQ(s.requests, 1);
  EXPECT_EQ(s.queries, 13);
  EXPECT_EQ(s.hits, 8);
  EXPECT_EQ(kv->make_prefix_cache_stats().queries, 0);  // taken
  kv->free(a);
  kv->free(b);
  for (int32_t i = 0; i < kv->block_pool().num_blocks(); ++i) EXPECT_EQ(kv->block_pool().block(i).ref_cnt, 0);
}

TEST(KVCacheManager, NeverHitsTheWholePrompt) {
  auto kv = make_manager(16);
  Request a = make_request("a", iota_tokens(12));
  admit_and_compute(*kv, a);
  kv->free(a);
  Request b = make_request("b", iota_tokens(12));  // identical: 3 cached blocks, but the last token must run
  auto [blocks, num_computed] = kv->get_computed_blocks(b);
  EXPECT_EQ(num_computed, 8);
  EXPECT_EQ(blocks.size(), 2u);
  Request c = make_request("c", iota_tokens(13));  // one more token: all three blocks usable
  EXPECT_EQ(kv->get_computed_blocks(c).second, 12);
}

TEST(KVCacheManager, ExtraKeysAndSkipSeparateCaches) {
  auto kv = make_manager(16);
  Request a = make_request("a", iota_tokens(9), {1});
  admit_and_compute(*kv, a);
  Request b = make_request("b", iota_tokens(9), {2});
  EXPECT_EQ(kv->get_computed_blocks(b).second, 0);
  Request c = make_request("c", iota_tokens(9), {1});
  EXPECT_EQ(kv->get_computed_blocks(c).second, 8);
  EngineCoreRequest skip;
  skip.request_id = "d";
  skip.prompt_token_ids = iota_tokens(9);
  skip.cache_extra_keys = {1};
  skip.skip_prefix_cache = true;
  Request d(std::move(skip), {}, 0);
  EXPECT_EQ(kv->get_computed_blocks(d).second, 0);
}

TEST(KVCacheManager, CacheBlocksRegistersOnlyWrittenFullBlocks) {
  auto kv = make_manager(8);
  Request a = make_request("a", iota_tokens(10));
  ASSERT_TRUE(kv->allocate_slots(a, 10));
  a.num_computed_tokens = 6;  // as after a first prefill chunk of 6
  kv->cache_blocks(a, 6);
  EXPECT_EQ(kv->block_pool().num_cached_blocks(), 1);
  a.num_computed_tokens = 10;
  kv->cache_blocks(a, 10);
  EXPECT_EQ(kv->block_pool().num_cached_blocks(), 2);
  // Decode appends tokens; hashes follow the output.
  a.append_output_token_ids(5);
  a.append_output_token_ids(6);
  ASSERT_TRUE(kv->allocate_slots(a, 2));
  a.num_computed_tokens = 12;
  kv->cache_blocks(a, 12);
  EXPECT_EQ(kv->block_pool().num_cached_blocks(), 3);
}

TEST(KVCacheManager, ClaimingFreeCachedBlocksCountsAgainstFreeSpace) {
  auto kv = make_manager(3);
  Request a = make_request("a", iota_tokens(8));
  admit_and_compute(*kv, a);
  kv->free(a);                                     // 2 cached free blocks + 1 fresh
  Request b = make_request("b", iota_tokens(13));  // hit 2 blocks (8 tokens), needs 2 more (4 + 1 tokens)
  auto [blocks, num_computed] = kv->get_computed_blocks(b);
  ASSERT_EQ(num_computed, 8);
  EXPECT_FALSE(kv->allocate_slots(b, 5, num_computed, blocks));  // 2 claimed + 2 new > 3
  EXPECT_EQ(kv->block_pool().get_num_free_blocks(), 3);
  EXPECT_EQ(kv->block_pool().num_cached_blocks(), 2);
  Request c = make_request("c", iota_tokens(12));  // hit 2, needs 1 more: fits exactly
  auto [c_blocks, c_computed] = kv->get_computed_blocks(c);
  EXPECT_TRUE(kv->allocate_slots(c, 4, c_computed, c_blocks));
  EXPECT_EQ(kv->block_pool().get_num_free_blocks(), 0);
}

TEST(KVCacheManager, GrowFnIsAskedForTheShortfall) {
  auto kv = make_manager(2, 10);
  std::vector<std::pair<int32_t, int32_t>> calls;
  kv->set_grow_fn([&](int32_t current, int32_t short_by) {
    calls.emplace_back(current, short_by);
    return 4;
  });
  Request a = make_request("a", iota_tokens(20));
  auto blocks = kv->allocate_slots(a, 20);  // 5 blocks, 2 free
  ASSERT_TRUE(blocks);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], std::make_pair(2, 3));
  EXPECT_EQ(kv->block_pool().num_blocks(), 6);
  EXPECT_EQ(kv->block_pool().get_num_free_blocks(), 1);
}

TEST(KVCacheManager, ShrinkKeepsTheFloorAndHeldBlocks) {
  auto kv = make_manager(8);
  Request a = make_request("a", iota_tokens(4));
  ASSERT_TRUE(kv->allocate_slots(a, 4));
  EXPECT_EQ(kv->shrink(100, 2), 6);
  EXPECT_EQ(kv->block_pool().num_blocks(), 2);
  kv->free(a);
  EXPECT_EQ(kv->shrink(100, 2), 0);
}

}  // namespace
}  // namespace nibble::engine
