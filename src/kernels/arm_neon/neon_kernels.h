// aarch64 NEON (Advanced SIMD) bodies (neon_kernels.cpp, neon_quant.cpp; design notes at the top of
// neon_kernels.cpp); the only symbol visible outside arm_neon/ is register_neon, called when the
// CPU has ASIMD (every aarch64 CPU). It fills every entry of the table: all weight formats.
#pragma once

#include "kernels/kernel_table.h"

namespace nibble::kernels::neon {

void register_neon(KernelTable& table);

}  // namespace nibble::kernels::neon
