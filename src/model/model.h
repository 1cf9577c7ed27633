// A loaded decoder-only model: the interface the CLI and (later) the engine's model runner use.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/status.h"
#include "model/config.h"
#include "model/kv_cache.h"

namespace nibble::model {

// Limits that size the workspaces and the KV cache at load; the forward pass allocates nothing.
struct LoadOptions {
  int64_t max_seq_len = 0;       // positions per sequence; 0 = min(max_position_embeddings, 4096)
  int64_t max_batch_tokens = 0;  // tokens per forward call; 0 = max_seq_len
  int64_t max_logit_rows = 1;    // logits rows a forward call can return
  int num_threads = 1;           // matmul / attention threads (the calling thread counts)
};

// One sequence's share of a batched forward call: its next `num_tokens` tokens (contiguous in the
// call's token list, in sequence order) sit at positions start_pos..start_pos+num_tokens-1 and
// attend to everything `cache` holds before them.
struct SeqSlice {
  int64_t num_tokens = 0;
  int64_t start_pos = 0;
  KvCache* cache = nullptr;
};

class Model {
 public:
  virtual ~Model() = default;

  const ModelConfig& config() const { return config_; }
  const LoadOptions& options() const { return options_; }

  // Runs tokens[0..n) of one sequence at positions start_pos..start_pos+n-1 in one pass (prefill
  // when n > 1, decode when n == 1), appending their K/V to `cache`, and returns the logits of the
  // last `num_logit_rows` tokens: [num_logit_rows, vocab_size], valid until the next call.
  // Errors: a token id out of range, more tokens than the limits allow.
  base::Result<std::span<const float>> forward(std::span<const int32_t> tokens, int64_t start_pos, KvCache& cache,
                                               int64_t num_logit_rows = 1);

  // Runs several sequences in one pass (continuous batching): tokens [T] is the concatenation of
  // every slice's tokens, so each linear layer is one matmul with M = T; attention runs per
  // sequence through its own cache. Returns the logits of the tokens at indices `logit_rows`
  // (into `tokens`): [logit_rows.size(), vocab_size], valid until the next call. Errors: token id
  // out of range, more tokens / rows than the limits allow, positions past a cache.
  virtual base::Result<std::span<const float>> forward_batch(std::span<const int32_t> tokens,
                                                             std::span<const SeqSlice> seqs,
                                                             std::span<const int64_t> logit_rows) = 0;

  // A contiguous cache sized for options().max_seq_len.
  std::unique_ptr<KvCache> new_kv_cache() const;

  // Bytes the loaded weights hold: the checkpoint tensors the model mapped and uses, plus the
  // copies made at load (fp32 norms and biases, converted scales) — WeightLoader::bytes_held().
  virtual uint64_t weight_bytes() const = 0;

  // Mixture-of-experts models: expert weight matrices streamed by the last forward call (each
  // chosen expert's matrices once per layer per call, however many tokens chose it); 0 when dense.
  virtual uint64_t expert_weight_reads() const { return 0; }
  // Their bytes, and the number of distinct experts run (per layer, summed) by the last call.
  virtual uint64_t expert_bytes_read() const { return 0; }
  virtual uint64_t experts_run() const { return 0; }

  // Weight bytes one decode token reads: every tensor but the unread rows of an untied embedding
  // table, with only the top-k chosen experts of each mixture-of-experts layer (at their mean
  // size). 0 = the model does not say (dense models; `nibble bench` estimates from the config).
  virtual double decode_weight_bytes_per_token() const { return 0.0; }

 protected:
  Model(ModelConfig config, LoadOptions options)
      : config_(std::move(config)), options_(options), rows_(static_cast<size_t>(options.max_logit_rows)) {}

  ModelConfig config_;
  LoadOptions options_;

 private:
  std::vector<int64_t> rows_;  // [max_logit_rows] forward()'s row list, so it allocates nothing
};

// Reads MODEL_DIR/config.json, picks the architecture from the registry, maps the weights and
// checks every tensor's name, shape and dtype. Errors name the file and tensor at fault.
base::Result<std::unique_ptr<Model>> load_model(const std::string& model_dir, const LoadOptions& options);

}  // namespace nibble::model
