// The interface between the engine and a model (vLLM: GPUModelRunner / Worker). The engine core
// calls it from its own thread only, one step at a time.
#pragma once

#include <cstdint>

#include "base/status.h"
#include "engine/scheduler_output.h"

namespace nibble::engine {

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;

  // Makes KV blocks [0, num_blocks) addressable, keeping the contents of blocks that stay. Called
  // once before the first step, then whenever the pool grows (more blocks) or shrinks while idle
  // (fewer; the removed ids are free). Growth comes in chunks of KvCachePlan::chunk_num_blocks,
  // so a runner can back each chunk with its own allocation and never copy. Returns an error
  // (e.g. resource_exhausted) when the memory cannot be had; the engine then stays at the old size.
  virtual base::Status set_num_kv_blocks(int32_t num_blocks) = 0;

  // Runs one step: for each scheduled request write the KV of its tokens into its blocks, and for
  // those with `sample` set, sample one token with the request's SamplingParams. Output is
  // index-aligned with scheduler_output.scheduled. An error fails every request in the batch.
  virtual base::Result<ModelRunnerOutput> execute_model(const SchedulerOutput& scheduler_output) = 0;
};

}  // namespace nibble::engine
