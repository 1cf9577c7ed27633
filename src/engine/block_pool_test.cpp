#include "engine/block_pool.h"

#include <gtest/gtest.h>

#include <vector>

namespace nibble::engine {
namespace {

std::vector<int32_t> ids(const std::vector<KVCacheBlock*>& blocks) {
  std::vector<int32_t> out;
  for (const KVCacheBlock* b : blocks) out.push_back(b->block_id);
  return out;
}

BlockHash hash_of(int32_t token, const BlockHash* parent = nullptr) {
  std::vector<int32_t> tokens(4, token);
  return hash_block_tokens(parent, tokens, {});
}

TEST(BlockHash, DependsOnParentTokensAndExtraKeys) {
  const std::vector<int32_t> a = {1, 2, 3, 4}, b = {1, 2, 3, 5};
  const BlockHash root = hash_block_tokens(nullptr, a, {});
  EXPECT_EQ(root, hash_block_tokens(nullptr, a, {}));
  EXPECT_NE(root, hash_block_tokens(nullptr, b, {}));
  EXPECT_NE(hash_block_tokens(&root, a, {}), root);
  const BlockHash other_parent = hash_block_tokens(nullptr, b, {});
  EXPECT_NE(hash_block_tokens(&root, a, {}), hash_block_tokens(&other_parent, a, {}));
  const std::vector<uint64_t> salt = {42};
  EXPECT_NE(hash_block_tokens(nullptr, a, salt), root);
  // Token ids are not confused with extra keys or counts.
  const std::vector<int32_t> short_tokens = {1, 2, 3};
  const std::vector<uint64_t> four = {4};
  EXPECT_NE(hash_block_tokens(nullptr, short_tokens, four), root);
}

TEST(BlockPool, AllocateAndFreeKeepCounts) {
  BlockPool pool(8, true);
  EXPECT_EQ(pool.get_num_free_blocks(), 8);
  auto blocks = pool.get_new_blocks(3);
  EXPECT_EQ(ids(blocks), (std::vector<int32_t>{0, 1, 2}));
  for (auto* b : blocks) EXPECT_EQ(b->ref_cnt, 1);
  EXPECT_EQ(pool.get_num_free_blocks(), 5);
  EXPECT_DOUBLE_EQ(pool.get_usage(), 3.0 / 8.0);
  pool.touch(std::vector<KVCacheBlock*>{blocks[0]});
  EXPECT_EQ(blocks[0]->ref_cnt, 2);
  pool.free_blocks(blocks);
  EXPECT_EQ(blocks[0]->ref_cnt, 1);
  EXPECT_EQ(pool.get_num_free_blocks(), 7);
  pool.free_blocks(std::vector<KVCacheBlock*>{blocks[0]});
  EXPECT_EQ(pool.get_num_free_blocks(), 8);
  EXPECT_DOUBLE_EQ(pool.get_usage(), 0.0);
}

TEST(BlockPool, FreedBlocksAreEvictedLeastRecentlyFreedFirst) {
  BlockPool pool(4, true);
  auto blocks = pool.get_new_blocks(4);
  // Free in the order 2, 0, 3, 1: that is the order they are handed out again.
  pool.free_blocks(std::vector<KVCacheBlock*>{blocks[2], blocks[0], blocks[3], blocks[1]});
  EXPECT_EQ(ids(pool.get_new_blocks(4)), (std::vector<int32_t>{2, 0, 3, 1}));
}

TEST(BlockPool, CachedBlockIsReusableUntilEvicted) {
  BlockPool pool(2, true);
  auto blocks = pool.get_new_blocks(2);
  const BlockHash h0 = hash_of(7), h1 = hash_of(8, &h0);
  const std::vector<BlockHash> hashes = {h0, h1};
  pool.cache_full_blocks(blocks, hashes, 0, 2);
  EXPECT_EQ(pool.num_cached_blocks(), 2);
  EXPECT_EQ(pool.get_cached_block(h0), blocks[0]);
  pool.free_blocks(std::vector<KVCacheBlock*>{blocks[1], blocks[0]});  // tail first
  // Still cached while free; a hit takes it out of the free queue.
  KVCacheBlock* hit = pool.get_cached_block(h0);
  ASSERT_EQ(hit, blocks[0]);
  pool.touch(std::vector<KVCacheBlock*>{hit});
  EXPECT_EQ(pool.get_num_free_blocks(), 1);
  // Allocating the last free block evicts its hash (block 1, freed first).
  auto fresh = pool.get_new_blocks(1);
  EXPECT_EQ(fresh[0]->block_id, 1);
  EXPECT_EQ(pool.get_cached_block(h1), nullptr);
  EXPECT_FALSE(fresh[0]->block_hash.has_value());
  EXPECT_EQ(pool.get_cached_block(h0), blocks[0]);
  EXPECT_EQ(pool.num_cached_blocks(), 1);
}

TEST(BlockPool, DuplicateHashKeepsTheFirstBlock) {
  BlockPool pool(2, true);
  auto a = pool.get_new_blocks(1), b = pool.get_new_blocks(1);
  const std::vector<BlockHash> hashes = {hash_of(1)};
  pool.cache_full_blocks(a, hashes, 0, 1);
  pool.cache_full_blocks(b, hashes, 0, 1);
  EXPECT_EQ(pool.get_cached_block(hashes[0]), a[0]);
  EXPECT_FALSE(b[0]->block_hash.has_value());
  pool.free_blocks(b);  // freeing the private duplicate leaves the cache intact
  EXPECT_EQ(pool.get_new_blocks(1)[0], b[0]);
  EXPECT_EQ(pool.get_cached_block(hashes[0]), a[0]);
}

TEST(BlockPool, CachingDisabledRegistersNothing) {
  BlockPool pool(2, false);
  auto blocks = pool.get_new_blocks(1);
  const std::vector<BlockHash> hashes = {hash_of(1)};
  pool.cache_full_blocks(blocks, hashes, 0, 1);
  EXPECT_EQ(pool.get_cached_block(hashes[0]), nullptr);
}

TEST(BlockPool, GrowAddsFreshBlocksAheadOfCachedOnes) {
  BlockPool pool(2, true);
  auto blocks = pool.get_new_blocks(2);
  const BlockHash h0 = hash_of(1), h1 = hash_of(2, &h0);
  const std::vector<BlockHash> hashes = {h0, h1};
  pool.cache_full_blocks(blocks, hashes, 0, 2);
  pool.free_blocks(blocks);
  pool.grow(3);
  EXPECT_EQ(pool.num_blocks(), 5);
  EXPECT_EQ(pool.get_num_free_blocks(), 5);
  // The three new blocks come first; the cached ones survive.
  EXPECT_EQ(ids(pool.get_new_blocks(3)), (std::vector<int32_t>{2, 3, 4}));
  EXPECT_NE(pool.get_cached_block(h0), nullptr);
  EXPECT_NE(pool.get_cached_block(h1), nullptr);
}

TEST(BlockPool, ShrinkRemovesOnlyFreeTailBlocks) {
  BlockPool pool(6, true);
  auto blocks = pool.get_new_blocks(6);
  const std::vector<BlockHash> hashes = {hash_of(1), hash_of(2), hash_of(3),
                                         hash_of(4), hash_of(5), hash_of(6)};
  pool.cache_full_blocks(blocks, hashes, 0, 6);
  pool.free_blocks(std::vector<KVCacheBlock*>{blocks[5], blocks[4], blocks[1]});
  EXPECT_EQ(pool.num_free_tail_blocks(), 2);  // block 3 is still held
  pool.shrink(2);
  EXPECT_EQ(pool.num_blocks(), 4);
  EXPECT_EQ(pool.get_num_free_blocks(), 1);
  EXPECT_EQ(pool.get_cached_block(hashes[5]), nullptr);
  EXPECT_EQ(pool.get_cached_block(hashes[4]), nullptr);
  EXPECT_EQ(pool.get_cached_block(hashes[1]), blocks[1]);
  EXPECT_EQ(pool.num_free_tail_blocks(), 0);
  pool.free_blocks(std::vector<KVCacheBlock*>{blocks[3], blocks[2], blocks[0]});
  EXPECT_EQ(pool.num_free_tail_blocks(), 4);
  pool.shrink(4);
  EXPECT_EQ(pool.num_blocks(), 0);
  EXPECT_EQ(pool.num_cached_blocks(), 0);
  pool.grow(2);
  EXPECT_EQ(ids(pool.get_new_blocks(2)), (std::vector<int32_t>{0, 1}));
}

TEST(BlockPool, ResetPrefixCacheOnlyWhenNothingIsHeld) {
  BlockPool pool(2, true);
  auto blocks = pool.get_new_blocks(1);
  const std::vector<BlockHash> hashes = {hash_of(1)};
  pool.cache_full_blocks(blocks, hashes, 0, 1);
  EXPECT_FALSE(pool.reset_prefix_cache());
  pool.free_blocks(blocks);
  EXPECT_TRUE(pool.reset_prefix_cache());
  EXPECT_EQ(pool.get_cached_block(hashes[0]), nullptr);
  EXPECT_EQ(pool.num_cached_blocks(), 0);
}

}  // namespace
}  // namespace nibble::engine
