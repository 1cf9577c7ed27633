// libFuzzer target: the server's request-body parsers (completions, chat, tokenize, detokenize).
// Any input must give a request or a 4xx ApiError naming a field, never a crash or an exception.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nibble::server;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  ParseLimits limits;
  for (Endpoint e : {Endpoint::kCompletions, Endpoint::kChatCompletions}) {
    ApiError error;
    auto r = parse_generate_request(body, e, limits, &error);
    if (!r) {
      if (error.http_status < 400 || error.http_status >= 500 || error.message.empty()) std::abort();
      (void)error.body();
    } else {
      if (r->sampling.n < 1 || r->sampling.n > limits.max_n) std::abort();
      if (static_cast<int32_t>(r->stop.size()) > limits.max_stop_strings) std::abort();
      (void)dump_json(r->messages);
    }
  }
  ApiError error;
  (void)parse_tokenize_request(body, &error);
  (void)parse_detokenize_request(body, &error);
  return 0;
}
