#include "kernels/generic_probes.h"

namespace nibble::kernels::generic {
namespace {

constexpr int kChains = 16;

double fma_probe(int64_t iters, float* sink) {
  float acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = 0.001f * static_cast<float>(i);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * 0.999999f + 1e-7f;
  }
  float sum = 0.0f;
  for (int i = 0; i < kChains; ++i) sum += acc[i];
  *sink = sum;
  return static_cast<double>(iters) * kChains * 2;
}

float read_probe(const float* x, int64_t n) {
  float acc[kChains] = {};
  int64_t i = 0;
  for (; i + kChains <= n; i += kChains) {
    for (int l = 0; l < kChains; ++l) acc[l] += x[i + l];
  }
  for (; i < n; ++i) acc[0] += x[i];
  float sum = 0.0f;
  for (int l = 0; l < kChains; ++l) sum += acc[l];
  return sum;
}

}  // namespace

void register_probes(KernelTable& table) {
  table.fma_probe = &fma_probe;
  table.read_probe = &read_probe;
}

}  // namespace nibble::kernels::generic
