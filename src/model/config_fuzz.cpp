// libFuzzer target: config.json and generation_config.json parsing never crash on any input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)nibble::model::parse_model_config(text, "fuzz/config.json");
  (void)nibble::model::parse_generation_config(text, "fuzz/generation_config.json");
  return 0;
}
