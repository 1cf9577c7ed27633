// Scalar reference of KernelTable::attention (its own file: the format rows and their matmul
// bodies live in ref_kernels.cpp).
#pragma once

#include "kernels/kernel_table.h"

namespace nibble::kernels::ref {

void register_ref_attention(KernelTable& table);

}  // namespace nibble::kernels::ref
