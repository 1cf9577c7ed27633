#include "kernels/kernel_table.h"

#include <cstdlib>
#include <mutex>

#include "base/cpu_features.h"
#include "kernels/generic_probes.h"
#include "kernels/ref/ref_attention.h"
#include "kernels/ref/ref_kernels.h"
#if defined(NIBBLE_KERNELS_X86)
#include "kernels/x86_avx2/avx2_kernels.h"
#include "kernels/x86_avx512/avx512_kernels.h"
#include "kernels/x86_avx512bf16/avx512bf16_kernels.h"
#endif
#if defined(NIBBLE_KERNELS_NEON)
#include "kernels/arm_neon/neon_kernels.h"
#endif

namespace nibble::kernels {

const std::vector<IsaInfo>& known_isas() {
  static const std::vector<IsaInfo> kIsas = {
    {"ref", [] { return true; }, &ref::register_ref, false},
#if defined(NIBBLE_KERNELS_X86)
    {"avx2",
     [] {
       const base::CpuFeatures& f = base::cpu_features();
       return f.avx2 && f.fma && f.f16c;
     },
     &avx2::register_avx2, false},
    {"avx512",
     [] {
       const base::CpuFeatures& f = base::cpu_features();
       return f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl;
     },
     &avx512::register_avx512, false},
    {"avx512bf16",
     [] {
       const base::CpuFeatures& f = base::cpu_features();
       return f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl && f.avx512bf16 &&
              f.avx512vnni && f.avx512vbmi;
     },
     &avx512bf16::register_avx512bf16, true},
#endif
#if defined(NIBBLE_KERNELS_NEON)
    {"neon", [] { return base::cpu_features().neon; }, &neon::register_neon, false},
#endif
  };
  return kIsas;
}

base::Result<KernelTable> make_kernel_table(std::string_view isa, bool exact_activations) {
  const auto& isas = known_isas();
  std::string available;
  for (const auto& info : isas) {
    if (!info.supported()) continue;
    if (!available.empty()) available += ", ";
    available += info.name;
  }
  size_t last = isas.size();
  if (isa.empty()) {
    for (size_t i = 0; i < isas.size(); ++i) {
      if (isas[i].supported() && !(exact_activations && isas[i].rounds_activations)) last = i;
    }
  } else {
    for (size_t i = 0; i < isas.size(); ++i) {
      if (isas[i].name == isa) last = i;
    }
    if (last == isas.size() || !isas[last].supported()) {
      return base::unsupported("NIBBLE_ISA=" + std::string(isa) +
                               " is not available on this CPU/build (available: " + available + ")");
    }
  }
  KernelTable table;
  generic::register_probes(table);
  ref::register_ref_attention(table);
  for (size_t i = 0; i <= last; ++i) {
    if (!isas[i].supported()) continue;
    if (exact_activations && isas[i].rounds_activations && i != last) continue;
    isas[i].register_fn(table);
    table.isa = std::string(isas[i].name);
    if (!isas[i].rounds_activations) {
      for (int f = 0; f < kNumWeightFormats; ++f) table.matmul_exact[f] = table.matmul[f];
    }
  }
  return table;
}

base::Result<const KernelTable*> kernel_table() {
  static std::once_flag once;
  static base::Result<KernelTable> table = base::internal_error("kernel table not built");
  std::call_once(once, [] {
    const char* env = std::getenv("NIBBLE_ISA");
    const char* exact = std::getenv("NIBBLE_EXACT");
    table = make_kernel_table(env == nullptr ? std::string_view() : std::string_view(env),
                              exact != nullptr && std::string_view(exact) == "1");
  });
  if (!table.ok()) return table.status();
  return &table.value();
}

}  // namespace nibble::kernels
