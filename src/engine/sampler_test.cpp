// Sampler tests against hand-computed distributions (vLLM semantics).
#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>
#include <vector>

namespace nibble::engine {
namespace {

// logits ln1, ln2, ln4 -> softmax 1/7, 2/7, 4/7.
std::vector<float> three_logits() {
  return {0.0f, std::log(2.0f), std::log(4.0f)};
}

std::vector<float> dist(const SamplingParams& p, std::vector<float> logits, std::vector<int32_t> prompt = {},
                        std::vector<int32_t> output = {}) {
  Sampler s(static_cast<int64_t>(logits.size()), p);
  auto d = s.distribution(logits, prompt, output);
  return {d.begin(), d.end()};
}

void expect_dist(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << "token " << i;
}

TEST(SamplerTest, GreedyPicksArgmaxLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0.0f;
  Sampler s(4, p);
  std::vector<float> logits = {0.5f, 2.0f, 2.0f, -1.0f};
  EXPECT_EQ(s.sample(logits, {}, {}), 1);
  EXPECT_TRUE(s.is_greedy());
}

TEST(SamplerTest, Temperature) {
  SamplingParams p;
  p.temperature = 1.0f;
  expect_dist(dist(p, three_logits()), {1.0 / 7, 2.0 / 7, 4.0 / 7});
  p.temperature = 0.5f;  // logits doubled: weights 1, 4, 16
  expect_dist(dist(p, three_logits()), {1.0 / 21, 4.0 / 21, 16.0 / 21});
}

TEST(SamplerTest, TopK) {
  SamplingParams p;
  p.top_k = 2;
  expect_dist(dist(p, three_logits()), {0.0, 2.0 / 6, 4.0 / 6});
  p.top_k = 1;
  expect_dist(dist(p, three_logits()), {0.0, 0.0, 1.0});
  p.top_k = -1;
  expect_dist(dist(p, three_logits()), {1.0 / 7, 2.0 / 7, 4.0 / 7});
}

TEST(SamplerTest, TopP) {
  SamplingParams p;
  p.top_p = 0.5f;  // the top token alone has 4/7 >= 0.5
  expect_dist(dist(p, three_logits()), {0.0, 0.0, 1.0});
  p.top_p = 0.6f;  // 4/7 < 0.6, so the second token is needed too
  expect_dist(dist(p, three_logits()), {0.0, 1.0 / 3, 2.0 / 3});
  p.top_p = 0.9f;  // 6/7 < 0.9: all three
  expect_dist(dist(p, three_logits()), {1.0 / 7, 2.0 / 7, 4.0 / 7});
}

TEST(SamplerTest, MinP) {
  SamplingParams p;
  p.min_p = 0.3f;  // threshold 0.3 * 4/7 = 0.171 > 1/7: token 0 dropped
  expect_dist(dist(p, three_logits()), {0.0, 1.0 / 3, 2.0 / 3});
  p.min_p = 0.2f;  // threshold 0.114 < 1/7: nothing dropped
  expect_dist(dist(p, three_logits()), {1.0 / 7, 2.0 / 7, 4.0 / 7});
}

TEST(SamplerTest, TopKThenTopPRenormalises) {
  SamplingParams p;
  p.top_k = 2;     // {2/6, 4/6}
  p.top_p = 0.7f;  // 4/6 < 0.7 -> keep both
  expect_dist(dist(p, three_logits()), {0.0, 1.0 / 3, 2.0 / 3});
  p.top_p = 0.6f;  // 4/6 >= 0.6 -> top only
  expect_dist(dist(p, three_logits()), {0.0, 0.0, 1.0});
}

TEST(SamplerTest, RepetitionPenaltyDividesPositiveMultipliesNegative) {
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  // logits -ln2, 0, ln4, ln2; token 0 in the prompt, token 2 in the output (twice: applied once).
  std::vector<float> logits = {-std::log(2.0f), 0.0f, std::log(4.0f), std::log(2.0f)};
  // after: -2 ln2 (weight 1/4), 0 (1), ln2 (2), ln2 (2) -> total 5.25
  expect_dist(dist(p, logits, {0}, {2, 2}), {0.25 / 5.25, 1.0 / 5.25, 2.0 / 5.25, 2.0 / 5.25});
}

TEST(SamplerTest, FrequencyAndPresencePenaltiesUseOutputCountsOnly) {
  SamplingParams p;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = std::log(2.0f);
  // zeros; prompt has token 0 (not penalised); output has token 1 twice, token 2 once.
  // token 1: -2*0.5 - ln2 -> weight e^-1 / 2 ; token 2: -0.5 - ln2 -> e^-0.5 / 2 ; token 0, 3: 1
  std::vector<float> logits(4, 0.0f);
  const double w1 = std::exp(-1.0) / 2, w2 = std::exp(-0.5) / 2, z = 2 + w1 + w2;
  expect_dist(dist(p, logits, {0}, {1, 2, 1}), {1 / z, w1 / z, w2 / z, 1 / z});
  // Penalties combine with greedy: token 0 wins after the output tokens are pushed down.
  p.temperature = 0.0f;
  Sampler s(3, p);
  std::vector<float> l2 = {1.0f, 1.2f, 0.0f};
  EXPECT_EQ(s.sample(l2, {}, std::vector<int32_t>{1}), 0);
}

TEST(SamplerTest, SeededStreamsAreReproducibleAndFollowTheDistribution) {
  SamplingParams p;
  p.seed = 1234;
  Sampler a(3, p), b(3, p);
  std::vector<int> counts(3, 0);
  const int kDraws = 20000;
  for (int i = 0; i < kDraws; ++i) {
    auto la = three_logits(), lb = three_logits();
    const int32_t ta = a.sample(la, {}, {});
    EXPECT_EQ(ta, b.sample(lb, {}, {}));
    ++counts[static_cast<size_t>(ta)];
  }
  // Binomial sd <= sqrt(0.25 / 20000) = 0.0035; 0.015 is > 4 sd.
  EXPECT_NEAR(counts[0] / double(kDraws), 1.0 / 7, 0.015);
  EXPECT_NEAR(counts[1] / double(kDraws), 2.0 / 7, 0.015);
  EXPECT_NEAR(counts[2] / double(kDraws), 4.0 / 7, 0.015);
  p.seed = 1235;
  Sampler c(3, p);
  int same = 0;
  SamplingParams p1234;
  p1234.seed = 1234;
  Sampler a2(3, p1234);
  for (int i = 0; i < 100; ++i) {
    auto l1 = three_logits(), l2 = three_logits();
    same += a2.sample(l1, {}, {}) == c.sample(l2, {}, {});
  }
  EXPECT_LT(same, 100);  // a different seed gives a different stream
}

TEST(SamplerTest, ValidateNamesTheParameter) {
  SamplingParams p;
  p.top_p = 0.0f;
  EXPECT_NE(validate_sampling_params(p, 3).message().find("top_p"), std::string::npos);
  p = {};
  p.temperature = -1.0f;
  EXPECT_NE(validate_sampling_params(p, 3).message().find("temperature"), std::string::npos);
  p = {};
  p.min_p = 2.0f;
  EXPECT_NE(validate_sampling_params(p, 3).message().find("min_p"), std::string::npos);
  EXPECT_TRUE(validate_sampling_params(SamplingParams{}, 3).ok());
}

TEST(SamplerTest, GreedyOnALargeVocabularyIsTheFirstMaximum) {
  for (int64_t vocab : {17, 100, 1001, 151936}) {
    std::vector<float> logits(static_cast<size_t>(vocab), -1.0f);
    uint64_t state = static_cast<uint64_t>(vocab);
    for (float& l : logits) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      l = static_cast<float>((state >> 40) % 1000);  // many ties at the top value
    }
    SamplingParams p;
    p.temperature = 0.0f;
    Sampler s(vocab, p);
    const auto want = std::max_element(logits.begin(), logits.end()) - logits.begin();
    EXPECT_EQ(s.sample(logits, {}, {}), want) << vocab;
    logits.back() = 5000.0f;  // a maximum in the scalar tail
    EXPECT_EQ(s.sample(logits, {}, {}), vocab - 1) << vocab;
  }
}

// Large vocabularies take the partial-selection paths (top-k by selection, top-p sorting only a
// growing prefix): the distribution must equal a plain full sort of the whole vocabulary.
TEST(SamplerTest, LargeVocabularyFiltersMatchAFullSort) {
  const int64_t vocab = 20000;
  std::vector<float> logits(static_cast<size_t>(vocab));
  uint64_t state = 12345;
  for (float& l : logits) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    l = static_cast<float>((state >> 40) % 100000) / 100000.0f * 12.0f;  // a long flat tail
  }
  for (const auto& [top_k, top_p, min_p] : std::vector<std::tuple<int32_t, float, float>>{
           {0, 0.9f, 0.0f}, {0, 0.999f, 0.0f}, {300, 0.95f, 0.0f}, {20, 1.0f, 0.0f}, {0, 0.5f, 0.01f}}) {
    SamplingParams p;
    p.temperature = 0.7f;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    const std::vector<float> got = dist(p, logits);
    // Oracle: scale, min-p, sort everything, top-k, top-p, renormalise.
    std::vector<std::pair<double, int32_t>> all;
    double max_l = -1e30;
    for (float l : logits) max_l = std::max(max_l, static_cast<double>(l / p.temperature));
    for (int64_t i = 0; i < vocab; ++i) {
      const double w = std::exp(static_cast<double>(logits[static_cast<size_t>(i)] / p.temperature) - max_l);
      if (min_p > 0 && w < min_p) continue;
      all.push_back({w, static_cast<int32_t>(i)});
    }
    std::sort(all.begin(), all.end(), [](auto& a, auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    if (top_k > 0 && static_cast<size_t>(top_k) < all.size()) all.resize(static_cast<size_t>(top_k));
    double sum = 0;
    for (auto& e : all) sum += e.first;
    size_t cut = all.size();
    double above = 0;
    for (size_t i = 0; i < all.size(); ++i) {
      if (i > 0 && above >= top_p) {
        cut = i;
        break;
      }
      above += all[i].first / sum;
    }
    all.resize(cut);
    sum = 0;
    for (auto& e : all) sum += e.first;
    std::vector<double> want(static_cast<size_t>(vocab), 0.0);
    for (auto& e : all) want[static_cast<size_t>(e.second)] = e.first / sum;
    SCOPED_TRACE("top_k " + std::to_string(top_k) + " top_p " + std::to_string(top_p));
    expect_dist(got, want);
    size_t nonzero = 0;
    for (float g : got) nonzero += g > 0;
    EXPECT_EQ(nonzero, all.size());
  }
}

}  // namespace
}  // namespace nibble::engine
