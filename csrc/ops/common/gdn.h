// Math of the fused GDN / IGDN op shared by the CPU and CUDA kernels.
//
// For one pixel with channels x[0..C):
//   norm[i] = beta[i] + sum_j gamma[i, j] * x[j]^2
//   GDN:  y[i] = x[i] / sqrt(norm[i])      IGDN: y[i] = x[i] * sqrt(norm[i])
// beta and gamma are the effective (already bounded and reparameterised) parameters.
#pragma once

#include <cmath>

#include "macros.h"

namespace lwdvc {

LWDVC_HOST_DEVICE float gdn_sqrt(float v) { return ::sqrtf(v); }
LWDVC_HOST_DEVICE double gdn_sqrt(double v) { return ::sqrt(v); }

// Output of one channel given its input x and its norm (float, or double for float64 inputs).
template <typename acc_t>
LWDVC_HOST_DEVICE acc_t gdn_output(acc_t x, acc_t norm, bool inverse) {
  const acc_t root = gdn_sqrt(norm);
  return inverse ? x * root : x / root;
}

}  // namespace lwdvc
