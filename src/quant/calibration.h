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
// whitespace or commas is read as ids; anything else falls back to its raw bytes (id = byte value),
// until the tokenizer lands (then MODEL_DIR's tokenizer encodes text).
base::Result<std::vector<int32_t>> read_token_file(const std::string& path, int64_t vocab_size);

// Per-module input amax over `tokens`, run in windows of at most `window` tokens.
base::Result<std::map<std::string, float>> collect_activation_amax(const std::string& model_dir,
                                                                   const std::vector<int32_t>& tokens,
                                                                   int64_t window, int num_threads);

}  // namespace nibble::quant
