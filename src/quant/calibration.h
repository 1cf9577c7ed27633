// Calibration: runs the unquantized model over token windows and records, for every Linear module,
// the max |x| of its input activations (ModelOpt's "max" calibration of input quantizers).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace nibble::quant {

// Reads a calibration / evaluation file as token ids: a file holding only integers separated by
// whitespace or commas is read as ids; any other file is text, encoded with `model_dir`'s tokenizer
// (no special tokens added). A model folder without tokenizer.json falls back to the raw bytes
// (id = byte value) with a warning.
base::Result<std::vector<int32_t>> read_token_file(const std::string& path, const std::string& model_dir,
                                                   int64_t vocab_size);

// Per-module input amax over `tokens`, run in windows of at most `window` tokens.
base::Result<std::map<std::string, float>> collect_activation_amax(const std::string& model_dir,
                                                                   const std::vector<int32_t>& tokens,
                                                                   int64_t window, int num_threads);

}  // namespace nibble::quant
