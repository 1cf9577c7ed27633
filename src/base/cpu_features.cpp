#include "base/cpu_features.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace nibble::base {
namespace {

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
    f.fma = (ecx >> 12) & 1;
    f.f16c = (ecx >> 29) & 1;
    const bool osxsave = (ecx >> 27) & 1;
    unsigned long long xcr0 = 0;
    if (osxsave) {
      unsigned lo = 0, hi = 0;
      __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
      xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
    }
    const bool ymm_ok = (xcr0 & 0x6) == 0x6;
    const bool zmm_ok = (xcr0 & 0xE6) == 0xE6;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
      f.avx2 = ymm_ok && ((ebx >> 5) & 1);
      f.avx512f = zmm_ok && ((ebx >> 16) & 1);
      f.avx512bw = zmm_ok && ((ebx >> 30) & 1);
      f.avx512vl = zmm_ok && ((ebx >> 31) & 1);
      f.avx512vnni = zmm_ok && ((ecx >> 11) & 1);
      f.avx512vbmi = zmm_ok && ((ecx >> 1) & 1);
    }
    if (__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) f.avx512bf16 = zmm_ok && ((eax >> 5) & 1);
    f.fma = f.fma && ymm_ok;
    f.f16c = f.f16c && ymm_ok;
  }
#elif defined(__aarch64__)
  const unsigned long hwcap = getauxval(AT_HWCAP);
  const unsigned long hwcap2 = getauxval(AT_HWCAP2);
  f.neon = (hwcap & HWCAP_ASIMD) != 0;
  f.dotprod = (hwcap & HWCAP_ASIMDDP) != 0;
#ifdef HWCAP2_BF16
  f.bf16 = (hwcap2 & HWCAP2_BF16) != 0;
#endif
#ifdef HWCAP2_I8MM
  f.i8mm = (hwcap2 & HWCAP2_I8MM) != 0;
#endif
  (void)hwcap2;
#endif
  return f;
}

}  // namespace

std::string CpuFeatures::describe() const {
  std::string s;
  auto add = [&s](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512vl, "avx512vl");
  add(avx512bf16, "avx512bf16");
  add(avx512vnni, "avx512vnni");
  add(avx512vbmi, "avx512vbmi");
  add(neon, "neon");
  add(dotprod, "dotprod");
  add(bf16, "bf16");
  add(i8mm, "i8mm");
  return s.empty() ? "scalar" : s;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

}  // namespace nibble::base
