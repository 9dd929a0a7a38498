// Validation of deform_conv2d, shared by every C++ backend; the messages match
// lwdvc_kernels/ops/deform_conv2d_validation.py.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <optional>

#include "fused_checks.h"

namespace lwdvc {

// Validates a deform_conv2d call; returns its sizes.
inline ConvShape check_deform_conv2d_args(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& offset,
                                          const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                          at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                          int64_t offset_groups, at::OptionalIntArrayRef offset_group_sizes) {
  const char* op = "deform_conv2d";
  const ConvShape s = check_conv2d_geometry(op, input, weight, stride, padding, dilation, groups);
  TORCH_CHECK_VALUE(offset.dim() == 4, op, ": offset must be 4-D [N, 2*offset_groups*kh*kw, Ho, Wo], got shape ",
                    offset.sizes());
  check_same_dtype_device(op, "offset", offset, input);
  if (offset_group_sizes.has_value()) {
    const auto sizes = *offset_group_sizes;
    int64_t total = 0;
    bool non_negative = true;
    for (const int64_t size : sizes) {
      total += size;
      non_negative = non_negative && size >= 0;
    }
    TORCH_CHECK_VALUE(static_cast<int64_t>(sizes.size()) == offset_groups && non_negative &&
                          total == s.in_channels,
                      op, ": offset_group_sizes ", sizes, " must have offset_groups = ", offset_groups,
                      " non-negative entries summing to the input channels ", s.in_channels);
  } else {
    TORCH_CHECK_VALUE(offset_groups > 0 && s.in_channels % offset_groups == 0, op, ": offset_groups ",
                      offset_groups, " must be positive and divide the input channels ", s.in_channels);
  }
  const int64_t offset_channels = 2 * offset_groups * s.kernel_h * s.kernel_w;
  TORCH_CHECK_VALUE(offset.size(0) == s.batch && offset.size(1) == offset_channels && offset.size(2) == s.out_h &&
                        offset.size(3) == s.out_w,
                    op, ": offset must have shape [", s.batch, ", ", offset_channels, ", ", s.out_h, ", ", s.out_w,
                    "] (2 * offset_groups * kh * kw channels), got ", offset.sizes());
  check_conv2d_bias(op, bias, input, s.out_channels);
  return s;
}

}  // namespace lwdvc
