// AVX2 + FMA + F16C bodies: compiled with their own flags in their own translation unit; the only
// symbol visible outside is register_avx2, called when the CPU has AVX2, FMA and F16C.
#pragma once

#include "kernels/kernel_table.h"

namespace nibble::kernels::avx2 {

void register_avx2(KernelTable& table);

}  // namespace nibble::kernels::avx2
