// AVX-512 (F/BW/VL) bodies: compiled with their own flags in their own translation unit; the only
// symbol visible outside is register_avx512, called when the CPU has AVX-512 F, BW and VL.
#pragma once

#include "kernels/kernel_table.h"

namespace nibble::kernels::avx512 {

void register_avx512(KernelTable& table);

}  // namespace nibble::kernels::avx512
