// Drives the Scheduler + KVCacheManager + BlockPool with a fuzzer-chosen sequence of arrivals,
// aborts and steps on a tiny pool, with the paged fake model. Traps on any broken block
// invariant, any wrong KV read by the fake model, or a block still referenced at the end.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine_test_util.h"

namespace {

struct Input {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;
  uint8_t next() { return pos < size ? data[pos++] : 0; }
  bool done() const { return pos >= size; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nibble::engine;
  Input in{data, size};
  constexpr int32_t kVocab = 19;
  const int32_t block_size = 1 + in.next() % 8;
  SchedulerConfig cfg;
  cfg.max_num_seqs = 1 + in.next() % 6;
  cfg.max_num_batched_tokens = 1 + in.next() % 40;
  cfg.max_model_len = 8 + in.next() % 56;
  cfg.vocab_size = kVocab;
  cfg.eos_token_ids = {in.next() % kVocab};
  const int32_t num_blocks = cdiv(cfg.max_model_len, block_size) + in.next() % 8;
  auto s = testing::make_scheduler(cfg, num_blocks, block_size, in.next() % 2 == 0);
  FakeModelRunner runner(kVocab, block_size);
  if (!runner.set_num_kv_blocks(num_blocks).ok()) __builtin_trap();
  std::vector<std::string> ids;
  int next_id = 0;
  while (!in.done()) {
    const uint8_t op = in.next();
    if (op % 4 == 0) {
      EngineCoreRequest r;
      r.request_id = "r" + std::to_string(next_id++);
      const int len = in.next() % 48;
      for (int i = 0; i < len; ++i) r.prompt_token_ids.push_back(in.next() % 24);  // some out of vocab
      r.sampling_params.max_tokens = in.next() % 40;
      r.sampling_params.ignore_eos = op & 16;
      r.sampling_params.min_tokens = (op & 32) ? in.next() % 4 : 0;
      if (op & 64) r.sampling_params.stop_token_ids = {in.next() % kVocab};
      if (s->add_request(r).ok()) ids.push_back(r.request_id);
    } else if (op % 4 == 1 && !ids.empty()) {
      s->finish_requests({ids[in.next() % ids.size()]}, RequestStatus::kFinishedAborted);
    } else {
      testing::step(*s, runner);
    }
    if (!testing::check_invariants(*s).empty() || !runner.errors().empty()) __builtin_trap();
  }
  for (int i = 0; i < 100000 && s->has_unfinished_requests(); ++i) {
    testing::step(*s, runner);
    if (!testing::check_invariants(*s).empty() || !runner.errors().empty()) __builtin_trap();
  }
  if (s->has_unfinished_requests()) __builtin_trap();
  const BlockPool& pool = s->kv_cache_manager().block_pool();
  if (pool.get_num_free_blocks() != pool.num_blocks()) __builtin_trap();
  return 0;
}
