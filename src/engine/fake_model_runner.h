// A deterministic stand-in for a model, for engine, scheduler and server tests.
//
// It keeps a real paged "KV cache": writing position p of a request stores a digest of the
// request's tokens [0, p] in slot p of its block table, and the next token is a hash of every slot
// read back through the block table. So outputs depend on the whole prefix exactly as a real model's
// do, and a wrong block table, a stale prefix-cache block or a slot read before it was written
// changes the output or is reported in errors(). Header-only so other layers' tests can use it.
//
// With KV cache groups (`group_windows`, one per group: 0 = full attention, W = a sliding window of
// W keys) every group's table gets the digests, and the readout reads, per group, the positions
// the last token can see (sliding: only the last W), so a block freed too early (null or reused)
// is reported, and a sliding window changes the tokens exactly as reference_next_token says.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "engine/model_runner.h"

namespace nibble::engine {

class FakeModelRunner : public ModelRunner {
 public:
  FakeModelRunner(int32_t vocab_size, int32_t block_size, std::vector<int32_t> group_windows = {})
      : vocab_size_(vocab_size), block_size_(block_size), group_windows_(std::move(group_windows)) {
    if (group_windows_.empty()) group_windows_.push_back(0);
  }

  // The digest stored for position p: a hash chain over tokens[0..p].
  static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 29);
  }
  // What a correct run samples after `tokens` (the oracle for "same as running it alone").
  static int32_t reference_next_token(const std::vector<int32_t>& tokens, int32_t vocab_size,
                                      const std::vector<int32_t>& group_windows = {}) {
    std::vector<uint64_t> digests;
    uint64_t digest = 0, readout = 0x1234;
    for (int32_t t : tokens) digests.push_back(digest = mix(digest, static_cast<uint32_t>(t)));
    const auto n = static_cast<int64_t>(tokens.size());
    for (int32_t window : group_windows.empty() ? std::vector<int32_t>{0} : group_windows) {
      for (int64_t p = window > 0 ? std::max<int64_t>(0, n - window) : 0; p < n; ++p)
        readout = mix(readout, digests[static_cast<size_t>(p)]);
    }
    return static_cast<int32_t>(readout % static_cast<uint64_t>(vocab_size));
  }

  base::Status set_num_kv_blocks(int32_t num_blocks) override {
    if (max_backed_blocks_ >= 0 && num_blocks > max_backed_blocks_)
      return base::resource_exhausted("fake runner: cannot back " + std::to_string(num_blocks) + " blocks");
    slots_.resize(static_cast<size_t>(num_blocks) * static_cast<size_t>(block_size_));
    num_blocks_ = num_blocks;
    ++num_resizes_;
    return base::ok_status();
  }

  base::Result<ModelRunnerOutput> execute_model(const SchedulerOutput& so) override {
    ++num_steps_;
    if (before_step_) before_step_();
    if (fail_next_step_) {
      fail_next_step_ = false;
      return base::internal_error("fake runner: injected failure");
    }
    ModelRunnerOutput out;
    out.sampled_token_ids.resize(so.scheduled.size());
    out.logprobs.resize(so.scheduled.size());
    for (size_t i = 0; i < so.scheduled.size(); ++i) {
      const ScheduledRequest& s = so.scheduled[i];
      const auto& all = s.request->all_token_ids();
      const std::string& id = s.request_id();
      if (s.num_scheduled_tokens() == 0) error(id + ": scheduled with no tokens");
      // Inputs must be the request's next tokens at their positions.
      for (int32_t k = 0; k < s.num_scheduled_tokens(); ++k) {
        const int32_t p = s.num_computed_tokens + k;
        if (s.positions[static_cast<size_t>(k)] != p || p >= static_cast<int32_t>(all.size()) ||
            s.token_ids[static_cast<size_t>(k)] != all[static_cast<size_t>(p)])
          error(id + ": wrong input token or position at " + std::to_string(p));
      }
      const int32_t end = s.num_computed_tokens + s.num_scheduled_tokens();
      const size_t num_groups = group_windows_.size();
      if (num_groups > 1 && s.group_block_ids.size() != num_groups)
        error(id + ": wrong number of group tables");
      std::vector<uint64_t> digests;
      uint64_t digest = 0;
      for (int32_t p = 0; p < end && p < static_cast<int32_t>(all.size()); ++p)
        digests.push_back(digest = mix(digest, static_cast<uint32_t>(all[static_cast<size_t>(p)])));
      uint64_t readout = 0x1234;
      for (size_t g = 0; g < num_groups; ++g) {
        const std::vector<int32_t>& table =
            num_groups > 1 && g < s.group_block_ids.size() ? s.group_block_ids[g] : s.block_ids;
        if (static_cast<int64_t>(table.size()) * block_size_ < end) error(id + ": block table too short");
        const int32_t window = group_windows_[g];
        // Earliest position any query of this step sees; the sampled token sees from `first_read`.
        const int32_t first_seen = window > 0 ? std::max(0, s.num_computed_tokens - window + 1) : 0;
        const int32_t first_read = window > 0 ? std::max(0, end - window) : 0;
        for (int32_t p = first_seen; p < static_cast<int32_t>(digests.size()); ++p) {
          Slot* slot = slot_at(table, p);
          if (!slot) {
            error(id + ": position " + std::to_string(p) + " maps outside the pool");
            continue;
          }
          const uint64_t d = digests[static_cast<size_t>(p)];
          if (p >= s.num_computed_tokens) {
            slot->written = true;
            slot->digest = d;
          } else if (!slot->written || slot->digest != d) {
            error(id + ": stale or unwritten KV at position " + std::to_string(p));
          }
          if (p >= first_read) readout = mix(readout, slot->digest);
        }
      }
      if (s.sample) {
        const auto token = static_cast<int32_t>(readout % static_cast<uint64_t>(vocab_size_));
        out.sampled_token_ids[i].push_back(token);
        if (s.request->sampling_params().logprobs)
          out.logprobs[i].push_back(TokenLogprobs{{token, -0.5f}, {}});
      }
    }
    return out;
  }

  const std::vector<std::string>& errors() const { return errors_; }
  int32_t num_blocks() const { return num_blocks_; }
  int64_t num_steps() const { return num_steps_; }
  int64_t num_resizes() const { return num_resizes_; }
  void set_max_backed_blocks(int32_t n) { max_backed_blocks_ = n; }  // -1 = unlimited
  void fail_next_step() { fail_next_step_ = true; }
  // Called at the start of every step on the engine thread (tests use it to hold the engine).
  void set_before_step(std::function<void()> fn) { before_step_ = std::move(fn); }

 private:
  struct Slot {
    bool written = false;
    uint64_t digest = 0;
  };
  Slot* slot_at(const std::vector<int32_t>& table, int32_t p) {
    const auto block_idx = static_cast<size_t>(p / block_size_);
    if (block_idx >= table.size()) return nullptr;
    const int32_t block_id = table[block_idx];
    if (block_id < 0 || block_id >= num_blocks_) return nullptr;
    return &slots_[static_cast<size_t>(block_id) * static_cast<size_t>(block_size_) +
                   static_cast<size_t>(p % block_size_)];
  }
  void error(std::string message) {
    if (errors_.size() < 100) errors_.push_back(std::move(message));
  }

  int32_t vocab_size_;
  int32_t block_size_;
  std::vector<int32_t> group_windows_;  // [num_groups] 0 = full attention
  int32_t num_blocks_ = 0;
  int32_t max_backed_blocks_ = -1;
  bool fail_next_step_ = false;
  std::function<void()> before_step_;
  int64_t num_steps_ = 0;
  int64_t num_resizes_ = 0;
  std::vector<Slot> slots_;  // [num_blocks * block_size]
  std::vector<std::string> errors_;
};

}  // namespace nibble::engine
