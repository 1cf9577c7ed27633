// What the CPU can do, read once (cpuid on x86-64, HWCAP on aarch64).
#pragma once

#include <string>

namespace nibble::base {

struct CpuFeatures {
  // x86-64
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512bf16 = false;
  bool avx512vnni = false;
  bool avx512vbmi = false;  // vpermb / vpermi2b byte permutes
  // aarch64
  bool neon = false;
  bool dotprod = false;
  bool bf16 = false;
  bool i8mm = false;

  std::string describe() const;  // e.g. "avx2 fma f16c avx512f ..."
};

const CpuFeatures& cpu_features();

}  // namespace nibble::base
