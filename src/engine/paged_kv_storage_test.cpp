#include "engine/paged_kv_storage.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace nibble::engine {
namespace {

TEST(PagedKvStorage, SlotsAreDisjointAndLaidOutAsDocumented) {
  // 2 layers, 3 kv heads of 4, 5-token blocks, chunks of 2 blocks.
  PagedKvStorage s(2, 3, 4, 5, 2);
  ASSERT_TRUE(s.resize(3).ok());
  EXPECT_EQ(s.bytes_per_block(), 2 * 2 * 5 * 3 * 4 * 4);
  EXPECT_EQ(s.allocated_bytes(), 3 * s.bytes_per_block());  // a chunk of two blocks and one of one
  std::set<float*> rows;
  for (int32_t b = 0; b < 3; ++b)
    for (int32_t l = 0; l < 2; ++l)
      for (int32_t o = 0; o < 5; ++o) {
        EXPECT_TRUE(rows.insert(s.key(b, l, o)).second);
        EXPECT_TRUE(rows.insert(s.value(b, l, o)).second);
        EXPECT_EQ(s.key(b, l, o), s.key_tile(b, l) + o * 12);
        EXPECT_EQ(s.value(b, l, o), s.value_tile(b, l) + o * 12);
        EXPECT_EQ(s.value_tile(b, l), s.key_tile(b, l) + 5 * 12);
      }
  // Fill every row with its own value, then read all back: no two rows overlap.
  auto tag = [](int32_t b, int32_t l, int32_t o, int kv) {
    return static_cast<float>(((b * 2 + l) * 5 + o) * 2 + kv);
  };
  EXPECT_EQ(*s.key(2, 1, 4), 0.0f);  // zeroed
  for (int32_t b = 0; b < 3; ++b)
    for (int32_t l = 0; l < 2; ++l)
      for (int32_t o = 0; o < 5; ++o)
        for (int i = 0; i < 12; ++i) {
          s.key(b, l, o)[i] = tag(b, l, o, 0);
          s.value(b, l, o)[i] = tag(b, l, o, 1);
        }
  for (int32_t b = 0; b < 3; ++b)
    for (int32_t l = 0; l < 2; ++l)
      for (int32_t o = 0; o < 5; ++o)
        for (int i = 0; i < 12; ++i) {
          ASSERT_EQ(s.key(b, l, o)[i], tag(b, l, o, 0));
          ASSERT_EQ(s.value(b, l, o)[i], tag(b, l, o, 1));
        }
}

TEST(PagedKvStorage, GrowAndShrinkKeepContents) {
  PagedKvStorage s(1, 1, 2, 4, 2);
  ASSERT_TRUE(s.resize(2).ok());
  s.key(1, 0, 3)[1] = 42.0f;
  float* before = s.key(1, 0, 3);
  ASSERT_TRUE(s.resize(7).ok());
  EXPECT_EQ(s.key(1, 0, 3), before);  // nothing moved
  EXPECT_EQ(s.key(1, 0, 3)[1], 42.0f);
  s.value(6, 0, 0)[0] = 7.0f;
  ASSERT_TRUE(s.resize(2).ok());
  EXPECT_EQ(s.allocated_bytes(), 2 * s.bytes_per_block());
  EXPECT_EQ(s.key(1, 0, 3)[1], 42.0f);
  // A partial last chunk grows and shrinks in place of a whole one, keeping its blocks.
  ASSERT_TRUE(s.resize(3).ok());
  EXPECT_EQ(s.allocated_bytes(), 3 * s.bytes_per_block());
  s.key(2, 0, 1)[0] = 5.0f;
  ASSERT_TRUE(s.resize(4).ok());
  EXPECT_EQ(s.allocated_bytes(), 4 * s.bytes_per_block());
  EXPECT_EQ(s.key(2, 0, 1)[0], 5.0f);
  EXPECT_EQ(s.value(3, 0, 3)[1], 0.0f);  // the new block is zeroed
  s.value(3, 0, 3)[1] = 9.0f;
  ASSERT_TRUE(s.resize(3).ok());
  ASSERT_TRUE(s.resize(4).ok());
  EXPECT_EQ(s.key(2, 0, 1)[0], 5.0f);
  EXPECT_EQ(s.key(1, 0, 3)[1], 42.0f);
  ASSERT_TRUE(s.resize(0).ok());
  EXPECT_EQ(s.allocated_bytes(), 0);
  EXPECT_FALSE(s.resize(-1).ok());
}

TEST(BlockTableView, MapsPositionsThroughTheBlockTable) {
  PagedKvStorage s(2, 1, 1, 4, 8);
  ASSERT_TRUE(s.resize(8).ok());
  const std::vector<int32_t> table = {5, 2, 7};
  BlockTableView view(&s, table);
  EXPECT_EQ(view.max_positions(), 12);
  EXPECT_EQ(view.key(0, 0), s.key(5, 0, 0));
  EXPECT_EQ(view.key(1, 5), s.key(2, 1, 1));
  EXPECT_EQ(view.value(1, 11), s.value(7, 1, 3));
}

}  // namespace
}  // namespace nibble::engine
