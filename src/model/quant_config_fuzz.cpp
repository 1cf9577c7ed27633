// libFuzzer target: quantization_config / hf_quant_config.json parsing and module matching never
// crash on any input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/quant_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto a = nibble::model::parse_quant_config(text, "fuzz/config.json", "", "");
  auto b = nibble::model::parse_quant_config("", "", text, "fuzz/hf_quant_config.json");
  for (const auto* r : {&a, &b}) {
    if (r->ok()) (void)nibble::model::module_algo(**r, "model.layers.0.self_attn.q_proj");
  }
  return 0;
}
