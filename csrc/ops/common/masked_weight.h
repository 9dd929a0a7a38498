// Math of the masked_weight op, shared by the CPU and CUDA kernels (no twin code).
//
// A weight is viewed as [outer, channels, inner] around the masked dim: element i belongs to
// channel (i / inner) % channels.
//
// Dtype rule of the per-channel factor (mask or gradient-decay scale): a double tensor gets its
// factor computed and applied in double; a float, half or bfloat16 tensor gets it computed in
// float and rounded to its own dtype (factor_t).
#pragma once

#include <cstdint>
#include <type_traits>

#include "macros.h"

namespace lwdvc {

// Type the per-channel factor of a tensor of scalar_t is computed in: double for double, float
// for every other dtype.
template <typename scalar_t>
using factor_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

// Gradient-decay factor of one channel: 1 for kept channels (mask 1), beta for pruned ones
// (mask 0); beta = 1 is the straight-through estimator, beta = 0 plain masking. T is float or
// double (factor_t of the tensor's dtype).
template <typename T>
LWDVC_HOST_DEVICE T gradient_decay_scale(T mask, T beta) {
  return mask + beta * (T(1) - mask);
}

// Channel of the linear (contiguous) index of an element in a weight viewed as
// [outer, channels, inner].
LWDVC_HOST_DEVICE int64_t channel_of(int64_t linear_index, int64_t inner, int64_t channels) {
  return (linear_index / inner) % channels;
}

}  // namespace lwdvc
