// Validation of deform_conv2d, shared by every C++ backend; the messages match
// lwdvc_kernels/ops/deform_conv2d_validation.py.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <optional>

#include "conv2d_epilogue.h"
#include "fused_checks.h"

namespace lwdvc {

// Sizes of a validated deform_conv2d call.
struct DeformConvShape {
  int64_t batch, in_channels, height, width;
  int64_t out_channels, kernel_h, kernel_w, out_h, out_w;
  int64_t groups, offset_groups;
};

inline DeformConvShape check_deform_conv2d_args(const at::Tensor& input, const at::Tensor& weight,
                                                const at::Tensor& offset, const std::optional<at::Tensor>& bias,
                                                at::IntArrayRef stride, at::IntArrayRef padding,
                                                at::IntArrayRef dilation, int64_t groups, int64_t offset_groups) {
  const char* op = "deform_conv2d";
  check_floating_weight(op, "input", input);
  TORCH_CHECK_VALUE(input.dim() == 4, op, ": input must be 4-D [N, C, H, W], got shape ", input.sizes());
  TORCH_CHECK_VALUE(weight.dim() == 4, op, ": weight must be 4-D [Cout, Cin/groups, kh, kw], got shape ",
                    weight.sizes());
  TORCH_CHECK_VALUE(offset.dim() == 4, op, ": offset must be 4-D [N, 2*offset_groups*kh*kw, Ho, Wo], got shape ",
                    offset.sizes());
  check_same_dtype_device(op, "weight", weight, input);
  check_same_dtype_device(op, "offset", offset, input);
  TORCH_CHECK_VALUE(stride.size() == 2 && padding.size() == 2 && dilation.size() == 2, op,
                    ": stride, padding and dilation must have two entries each");
  TORCH_CHECK_VALUE(stride[0] > 0 && stride[1] > 0 && dilation[0] > 0 && dilation[1] > 0 &&
                        padding[0] >= 0 && padding[1] >= 0,
                    op, ": stride and dilation must be positive and padding non-negative");
  DeformConvShape s{input.size(0), input.size(1), input.size(2), input.size(3), weight.size(0), weight.size(2),
                    weight.size(3), 0, 0, groups, offset_groups};
  TORCH_CHECK_VALUE(groups > 0 && s.in_channels % groups == 0 && s.out_channels % groups == 0, op, ": groups ",
                    groups, " must divide input channels ", s.in_channels, " and output channels ", s.out_channels);
  TORCH_CHECK_VALUE(weight.size(1) * groups == s.in_channels, op, ": weight ", weight.sizes(), " with groups ",
                    groups, " expects ", weight.size(1) * groups, " input channels, input has ", s.in_channels,
                    " (shape ", input.sizes(), ")");
  TORCH_CHECK_VALUE(offset_groups > 0 && s.in_channels % offset_groups == 0, op, ": offset_groups ",
                    offset_groups, " must be positive and divide the input channels ", s.in_channels);
  s.out_h = conv_output_size(s.height, s.kernel_h, stride[0], padding[0], dilation[0]);
  s.out_w = conv_output_size(s.width, s.kernel_w, stride[1], padding[1], dilation[1]);
  TORCH_CHECK_VALUE(s.out_h > 0 && s.out_w > 0, op, ": input ", input.sizes(), " is smaller than the kernel ",
                    weight.sizes());
  const int64_t offset_channels = 2 * offset_groups * s.kernel_h * s.kernel_w;
  TORCH_CHECK_VALUE(offset.size(0) == s.batch && offset.size(1) == offset_channels && offset.size(2) == s.out_h &&
                        offset.size(3) == s.out_w,
                    op, ": offset must have shape [", s.batch, ", ", offset_channels, ", ", s.out_h, ", ", s.out_w,
                    "] (2 * offset_groups * kh * kw channels), got ", offset.sizes());
  if (bias.has_value()) {
    check_same_dtype_device(op, "bias", *bias, input);
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == s.out_channels, op, ": bias must have shape [",
                      s.out_channels, "], got ", bias->sizes());
  }
  return s;
}

}  // namespace lwdvc
