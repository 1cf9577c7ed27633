#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace nibble::engine {

namespace {
constexpr float kGreedyTemperature = 1e-5f;  // vLLM's _SAMPLING_EPS

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}
}  // namespace

SamplerRng::SamplerRng(uint64_t seed) {
  uint64_t state = seed;
  for (uint64_t& s : s_) s = splitmix64(state);
}

uint64_t SamplerRng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double SamplerRng::next_uniform() {
  return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0);
}

Sampler::Sampler(int64_t vocab_size, const SamplingParams& params)
    : vocab_size_(vocab_size),
      params_(params),
      rng_(params.seed.value_or(0)),
      output_counts_(static_cast<size_t>(vocab_size), 0),
      seen_(static_cast<size_t>(vocab_size), 0),
      kept_(static_cast<size_t>(vocab_size)),
      probs_(static_cast<size_t>(vocab_size), 0.0f) {}

bool Sampler::is_greedy() const {
  return params_.temperature < kGreedyTemperature;
}

void Sampler::apply_penalties(std::span<float> logits, std::span<const int32_t> prompt_ids,
                              std::span<const int32_t> output_ids) {
  auto in_vocab = [&](int32_t id) { return id >= 0 && id < vocab_size_; };
  if (params_.repetition_penalty != 1.0f) {
    const float penalty = params_.repetition_penalty;
    for (auto ids : {prompt_ids, output_ids}) {
      for (int32_t id : ids) {
        if (!in_vocab(id) || seen_[static_cast<size_t>(id)]) continue;
        seen_[static_cast<size_t>(id)] = 1;
        float& l = logits[static_cast<size_t>(id)];
        l = l > 0.0f ? l / penalty : l * penalty;
      }
    }
    for (auto ids : {prompt_ids, output_ids}) {
      for (int32_t id : ids) {
        if (in_vocab(id)) seen_[static_cast<size_t>(id)] = 0;
      }
    }
  }
  if (params_.frequency_penalty != 0.0f || params_.presence_penalty != 0.0f) {
    for (int32_t id : output_ids) {
      if (in_vocab(id)) ++output_counts_[static_cast<size_t>(id)];
    }
    for (int32_t id : output_ids) {
      if (!in_vocab(id)) continue;
      int32_t& count = output_counts_[static_cast<size_t>(id)];
      if (count == 0) continue;  // already applied for this id
      logits[static_cast<size_t>(id)] -=
          params_.frequency_penalty * static_cast<float>(count) + params_.presence_penalty;
      count = 0;
    }
  }
}

int64_t Sampler::filter(std::span<float> logits) {
  // Temperature, then softmax over the whole vocabulary.
  const float inv_temp = 1.0f / params_.temperature;
  float max_logit = -std::numeric_limits<float>::infinity();
  for (float& l : logits) {
    l *= inv_temp;
    max_logit = std::max(max_logit, l);
  }
  double sum = 0.0;
  for (int64_t i = 0; i < vocab_size_; ++i) sum += std::exp(static_cast<double>(logits[i] - max_logit));
  // min-p: keep tokens with prob >= min_p * max prob (max prob = 1 / sum).
  const double min_prob = static_cast<double>(params_.min_p) / sum;
  int64_t n = 0;
  for (int64_t i = 0; i < vocab_size_; ++i) {
    const double prob = std::exp(static_cast<double>(logits[i] - max_logit)) / sum;
    if (params_.min_p > 0.0f && prob < min_prob) continue;
    kept_[static_cast<size_t>(n++)] = {logits[i], static_cast<int32_t>(i)};
  }
  // top-k on the logits (descending, ties by lower id), then sort what is kept.
  auto by_logit = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  const int64_t k = params_.top_k > 0 ? std::min<int64_t>(params_.top_k, n) : n;
  std::partial_sort(kept_.begin(), kept_.begin() + k, kept_.begin() + n, by_logit);
  n = k;
  // Renormalise over the kept tokens, then top-p: keep a token while the mass above it is < top_p.
  double kept_sum = 0.0;
  for (int64_t i = 0; i < n; ++i) kept_sum += std::exp(static_cast<double>(kept_[i].first - max_logit));
  if (params_.top_p < 1.0f) {
    double above = 0.0;
    int64_t cut = n;
    for (int64_t i = 0; i < n; ++i) {
      if (i > 0 && above >= params_.top_p) {
        cut = i;
        break;
      }
      above += std::exp(static_cast<double>(kept_[i].first - max_logit)) / kept_sum;
    }
    n = cut;
    kept_sum = 0.0;
    for (int64_t i = 0; i < n; ++i) kept_sum += std::exp(static_cast<double>(kept_[i].first - max_logit));
  }
  for (int64_t i = 0; i < n; ++i) {
    kept_[i].first = static_cast<float>(std::exp(static_cast<double>(kept_[i].first - max_logit)) / kept_sum);
  }
  return n;
}

std::span<const float> Sampler::distribution(std::span<float> logits, std::span<const int32_t> prompt_ids,
                                             std::span<const int32_t> output_ids) {
  apply_penalties(logits, prompt_ids, output_ids);
  std::fill(probs_.begin(), probs_.end(), 0.0f);
  if (is_greedy()) {
    const auto best = std::max_element(logits.begin(), logits.end());  // first (lowest id) on ties
    kept_[0] = {1.0f, static_cast<int32_t>(best - logits.begin())};
    num_kept_ = 1;
  } else {
    num_kept_ = filter(logits);
  }
  for (int64_t i = 0; i < num_kept_; ++i) probs_[static_cast<size_t>(kept_[i].second)] = kept_[i].first;
  return probs_;
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> prompt_ids,
                        std::span<const int32_t> output_ids) {
  distribution(logits, prompt_ids, output_ids);
  if (num_kept_ == 1) return kept_[0].second;
  // Inverse CDF over the kept tokens, most likely first.
  const double u = rng_.next_uniform();
  double cum = 0.0;
  for (int64_t i = 0; i < num_kept_; ++i) {
    cum += kept_[i].first;
    if (u < cum) return kept_[i].second;
  }
  return kept_[static_cast<size_t>(num_kept_ - 1)].second;
}

}  // namespace nibble::engine
