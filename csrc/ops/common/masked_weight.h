// Math of the masked_weight op, shared by the CPU and CUDA kernels (no twin code).
//
// A weight is viewed as [outer, channels, inner] around the masked dim: element i belongs to
// channel (i / inner) % channels.
#pragma once

#include <cstdint>

#include "macros.h"

namespace lwdvc {

// Gradient-decay factor of one channel: 1 for kept channels (mask 1), beta for pruned ones
// (mask 0); beta = 1 is the straight-through estimator, beta = 0 plain masking.
LWDVC_HOST_DEVICE float gradient_decay_scale(float mask, float beta) {
  return mask + beta * (1.0f - mask);
}

// Channel of the linear (contiguous) index of an element in a weight viewed as
// [outer, channels, inner].
LWDVC_HOST_DEVICE int64_t channel_of(int64_t linear_index, int64_t inner, int64_t channels) {
  return (linear_index / inner) % channels;
}

}  // namespace lwdvc
