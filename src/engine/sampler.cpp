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

// Index of the largest value, the lowest index on ties (std::max_element's answer). Eight
// independent lanes break the compare-and-select dependency chain of a plain scan (a 152k-entry
// vocabulary per request per step).
int64_t argmax_first(std::span<const float> v) {
  constexpr int kLanes = 8;
  const auto n = static_cast<int64_t>(v.size());
  if (n < 2 * kLanes) return std::max_element(v.begin(), v.end()) - v.begin();
  float best[kLanes];
  int64_t idx[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    best[l] = v[static_cast<size_t>(l)];
    idx[l] = l;
  }
  int64_t i = kLanes;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float x = v[static_cast<size_t>(i + l)];
      const bool better = x > best[l];
      best[l] = better ? x : best[l];
      idx[l] = better ? i + l : idx[l];
    }
  }
  int64_t out = idx[0];
  for (int l = 1; l < kLanes; ++l) {
    const float b = best[l], cur = v[static_cast<size_t>(out)];
    if (b > cur || (b == cur && idx[l] < out)) out = idx[l];
  }
  for (; i < n; ++i)
    if (v[static_cast<size_t>(i)] > v[static_cast<size_t>(out)]) out = i;
  return out;
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
  // Temperature, then (conceptually) a softmax over the whole vocabulary. Only the kept tokens'
  // probabilities are ever needed, renormalised over what is kept, so the full-vocabulary sum is
  // never formed and only as much of the vocabulary is sorted as top-k / top-p look at.
  const float inv_temp = 1.0f / params_.temperature;
  float max_logit = -std::numeric_limits<float>::infinity();
  for (float& l : logits) {
    l *= inv_temp;
    max_logit = std::max(max_logit, l);
  }
  // min-p: keep tokens with prob >= min_p * max prob, i.e. exp(l - max) >= min_p.
  int64_t n = 0;
  if (params_.min_p > 0.0f) {
    const double min_p = params_.min_p;
    for (int64_t i = 0; i < vocab_size_; ++i) {
      if (std::exp(static_cast<double>(logits[i] - max_logit)) < min_p) continue;
      kept_[static_cast<size_t>(n++)] = {logits[i], static_cast<int32_t>(i)};
    }
  } else {
    for (int64_t i = 0; i < vocab_size_; ++i)
      kept_[static_cast<size_t>(i)] = {logits[i], static_cast<int32_t>(i)};
    n = vocab_size_;
  }
  // Descending logits, ties by lower id.
  auto by_logit = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  const auto first = kept_.begin();
  // top-k: select the k largest (linear), then sort just those.
  if (params_.top_k > 0 && params_.top_k < n) {
    std::nth_element(first, first + params_.top_k, first + n, by_logit);
    n = params_.top_k;
  }
  auto weight = [&](int64_t i) {
    return std::exp(static_cast<double>(kept_[static_cast<size_t>(i)].first - max_logit));
  };
  double kept_sum = 0.0;
  for (int64_t i = 0; i < n; ++i) kept_sum += weight(i);
  if (params_.top_p < 1.0f) {
    // top-p: keep a token while the mass above it is < top_p. Sort a growing prefix until the cut
    // falls inside it (the sorted prefix of a partial sort is the true top of the whole range).
    int64_t sorted = 0, cut = n;
    double above = 0.0;
    for (int64_t want = std::min<int64_t>(n, 64);; want = std::min<int64_t>(n, want * 8)) {
      std::partial_sort(first + sorted, first + want, first + n, by_logit);
      bool done = false;
      for (int64_t i = sorted; i < want; ++i) {
        if (i > 0 && above >= params_.top_p) {
          cut = i;
          done = true;
          break;
        }
        above += weight(i) / kept_sum;
      }
      sorted = want;
      if (done || want == n) break;
    }
    n = cut;
    kept_sum = 0.0;
    for (int64_t i = 0; i < n; ++i) kept_sum += weight(i);
  } else if (n <= 4096) {
    std::sort(first, first + n, by_logit);  // small sets: most likely first, as documented
  }
  for (int64_t i = 0; i < n; ++i)
    kept_[static_cast<size_t>(i)].first = static_cast<float>(weight(i) / kept_sum);
  return n;
}

void Sampler::select(std::span<float> logits, std::span<const int32_t> prompt_ids,
                     std::span<const int32_t> output_ids) {
  apply_penalties(logits, prompt_ids, output_ids);
  if (is_greedy()) {
    kept_[0] = {1.0f, static_cast<int32_t>(argmax_first(logits))};  // lowest id on ties
    num_kept_ = 1;
  } else {
    num_kept_ = filter(logits);
  }
}

std::span<const float> Sampler::distribution(std::span<float> logits, std::span<const int32_t> prompt_ids,
                                             std::span<const int32_t> output_ids) {
  select(logits, prompt_ids, output_ids);
  std::fill(probs_.begin(), probs_.end(), 0.0f);
  for (int64_t i = 0; i < num_kept_; ++i) probs_[static_cast<size_t>(kept_[i].second)] = kept_[i].first;
  return probs_;
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> prompt_ids,
                        std::span<const int32_t> output_ids) {
  select(logits, prompt_ids, output_ids);
  if (num_kept_ == 1) return kept_[0].second;
  // Inverse CDF over the kept tokens (most likely first when top-p cut them or few are kept).
  const double u = rng_.next_uniform();
  double cum = 0.0;
  for (int64_t i = 0; i < num_kept_; ++i) {
    cum += kept_[i].first;
    if (u < cum) return kept_[i].second;
  }
  return kept_[static_cast<size_t>(num_kept_ - 1)].second;
}

}  // namespace nibble::engine
