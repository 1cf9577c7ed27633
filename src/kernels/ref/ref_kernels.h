// Scalar reference kernels: the oracle every ISA is tested against. Plain C++, no intrinsics.
#pragma once

#include "kernels/kernel_table.h"

namespace nibble::kernels::ref {

void register_ref(KernelTable& table);

}  // namespace nibble::kernels::ref
