// libFuzzer target: SafetensorsFile::parse on arbitrary bytes must return a value or an error,
// never crash, and every tensor it accepts must lie inside the input with a consistent size.
#include <cstdint>
#include <cstdlib>

#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = nibble::io::SafetensorsFile::parse(data, size, "fuzz.safetensors");
  if (!file.ok()) {
    if (file.status().message().empty()) std::abort();
    return 0;
  }
  for (const nibble::io::TensorInfo& t : (*file)->tensors()) {
    const auto expected = nibble::tensor::dtype_num_bytes(t.dtype, static_cast<uint64_t>(t.num_elems()));
    if (!expected || *expected != t.num_bytes) std::abort();
    if (t.data < data || t.data + t.num_bytes > data + size) std::abort();
    if (t.num_bytes > 0) {
      // Touch both ends so ASan checks the range.
      volatile uint8_t sink = t.data[0];
      sink = t.data[t.num_bytes - 1];
      (void)sink;
    }
  }
  return 0;
}
