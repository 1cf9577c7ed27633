// Portable C++ bodies of the roofline probes (KernelTable::fma_probe / read_probe), used until an
// ISA registers its own.
#pragma once

#include "kernels/kernel_table.h"

namespace nibble::kernels::generic {

void register_probes(KernelTable& table);

}  // namespace nibble::kernels::generic
