// aarch64 NEON (Advanced SIMD) bodies: compiled in their own translation unit; the only symbol
// visible outside is register_neon, called when the CPU has ASIMD (every aarch64 CPU).
#pragma once

#include "kernels/kernel_table.h"

namespace nibble::kernels::neon {

void register_neon(KernelTable& table);

}  // namespace nibble::kernels::neon
