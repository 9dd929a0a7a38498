// Math of the conv2d_epilogue op shared by the CPU and CUDA kernels: the activation codes and
// the PixelShuffle index map that lets the epilogue store straight into the shuffled layout.
//
// Epilogue of one conv output element y (bias already added):
//   out[shuffled index] = act(y) + residual[shuffled index]
#pragma once

#include <cstdint>

#include "macros.h"

namespace lwdvc {

// Activation codes; the schema passes the names "none", "relu" and "leaky_relu".
enum class Activation : int { kNone = 0, kRelu = 1, kLeakyRelu = 2 };

// acc_t is float, or double for float64 tensors. NaN stays NaN, as in F.relu / F.leaky_relu
// (`v < 0` is false for NaN; a max(v, 0) would return the 0).
template <typename acc_t>
LWDVC_HOST_DEVICE acc_t apply_activation(acc_t v, Activation act, acc_t negative_slope) {
  if (act == Activation::kRelu) return v < acc_t(0) ? acc_t(0) : v;
  if (act == Activation::kLeakyRelu) return v > acc_t(0) ? v : v * negative_slope;
  return v;
}

// Where conv output element (channel c, row h, column w) lands after PixelShuffle(r):
// channel c / r^2, row h * r + (c % r^2) / r, column w * r + c % r.
struct ShuffledIndex {
  int64_t channel, row, col;
};

LWDVC_HOST_DEVICE ShuffledIndex pixel_shuffle_index(int64_t c, int64_t h, int64_t w, int64_t r) {
  const int64_t rr = r * r;
  const int64_t sub = c % rr;
  return ShuffledIndex{c / rr, h * r + sub / r, w * r + sub % r};
}

// Output size of a convolution along one spatial dim: floor((in + 2p - d(k-1) - 1) / s) + 1, which
// is <= 0 when the dilated kernel is larger than the padded input (C++ `/` truncates toward zero
// and would give 1 for a numerator in (-s, 0)). Callers keep the terms within int64 (the
// preconditions check them, see require_conv2d).
LWDVC_HOST_DEVICE int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t padding,
                                           int64_t dilation) {
  const int64_t span = in + 2 * padding - dilation * (kernel - 1) - 1;
  const int64_t steps = span >= 0 ? span / stride : -((-span + stride - 1) / stride);
  return steps + 1;
}

}  // namespace lwdvc
