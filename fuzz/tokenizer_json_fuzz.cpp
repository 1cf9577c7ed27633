// libFuzzer target: arbitrary bytes as tokenizer.json. Whatever loads must encode, decode and
// stream a short mixed text without crashing.
//   build/fuzz/fuzz/tokenizer_json_fuzz -max_total_time=120 tests/golden/tokenizers/synthetic/*/
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto tok = nibble::tokenizer::Tokenizer::from_json_string(json, "fuzz");
  if (!tok.ok()) return 0;
  const auto& t = *tok.value();
  auto ids = t.encode(
      "Hello, world! <s> 123  \n\t caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 <|im_start|>", true);
  if (!ids.ok()) return 0;
  (void)t.decode(*ids, false);
  (void)t.decode(*ids, true);
  nibble::tokenizer::IncrementalDetokenizer detok(&t, false);
  for (const uint32_t id : *ids) (void)detok.step(id);
  (void)detok.flush();
  (void)t.decode({0, 1, 2, 3, 0xFFFFFFFFu}, false);
  (void)t.vocab_size();
  return 0;
}
