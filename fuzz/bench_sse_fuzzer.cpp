// Fuzzes the serving benchmark's SSE reader: arbitrary bytes, split into two network reads at a
// position taken from the first byte, through SseSplitter and StreamAccumulator.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bench/serve_sse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t split = bytes.empty() ? 0 : data[0] % (bytes.size() + 1);
  nibble::bench::SseSplitter splitter;
  nibble::bench::StreamAccumulator acc(0.0);
  double now_s = 0.001;
  for (std::string_view piece : {bytes.substr(0, split), bytes.substr(split)}) {
    for (const std::string& message : splitter.add(piece)) acc.on_message(message, now_s += 0.001);
  }
  const std::string rest = splitter.take_rest();
  if (!rest.empty()) acc.on_message(rest, now_s + 0.001);
  nibble::bench::RequestOutput out;
  acc.finish(&out);
  return 0;
}
