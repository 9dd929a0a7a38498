// Validation of the fused inference ops (conv2d_epilogue, gdn) and the convolution checks they
// share with deform_conv2d, used by every C++ backend;
// the messages match lwdvc_kernels/ops/fused_validation.py.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <string>

#include "checks.h"
#include "conv2d_epilogue.h"

namespace lwdvc {

inline void check_same_dtype_device(const char* op, const char* name, const at::Tensor& t,
                                    const at::Tensor& input) {
  TORCH_CHECK_TYPE(t.scalar_type() == input.scalar_type(), op, ": ", name, " has dtype ",
                   t.scalar_type(), " but input has ", input.scalar_type());
  TORCH_CHECK_VALUE(t.device() == input.device(), op, ": ", name, " is on ", t.device(),
                    " but input is on ", input.device());
}

inline Activation parse_activation(const char* op, c10::string_view name) {
  if (name == "none") return Activation::kNone;
  if (name == "relu") return Activation::kRelu;
  if (name == "leaky_relu") return Activation::kLeakyRelu;
  TORCH_CHECK_VALUE(false, op, ": unknown activation '", std::string(name),
                    "' (expected none, relu or leaky_relu)");
}

// Sizes of a validated 2-D convolution (conv2d_epilogue, deform_conv2d).
struct ConvShape {
  int64_t batch, in_channels, height, width;
  int64_t out_channels, kernel_h, kernel_w, out_h, out_w;  // conv output (before any shuffle)
};
using ConvEpilogueShape = ConvShape;

// Checks shared by the 2-D convolution ops: floating 4-D input and weight of one dtype and device,
// two-entry stride / padding / dilation, groups dividing both channel counts, an output of at
// least one pixel.
inline ConvShape check_conv2d_geometry(const char* op, const at::Tensor& input, const at::Tensor& weight,
                                       at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                                       int64_t groups) {
  check_floating_weight(op, "input", input);
  check_floating_weight(op, "weight", weight);
  TORCH_CHECK_VALUE(input.dim() == 4, op, ": input must be 4-D [N, C, H, W], got shape ", input.sizes());
  TORCH_CHECK_VALUE(weight.dim() == 4, op, ": weight must be 4-D [Cout, Cin/groups, kh, kw], got shape ",
                    weight.sizes());
  check_same_dtype_device(op, "weight", weight, input);
  TORCH_CHECK_VALUE(stride.size() == 2 && padding.size() == 2 && dilation.size() == 2, op,
                    ": stride, padding and dilation must have two entries each");
  TORCH_CHECK_VALUE(stride[0] > 0 && stride[1] > 0 && dilation[0] > 0 && dilation[1] > 0 &&
                        padding[0] >= 0 && padding[1] >= 0,
                    op, ": stride and dilation must be positive and padding non-negative");
  TORCH_CHECK_VALUE(groups > 0 && input.size(1) % groups == 0 && weight.size(0) % groups == 0, op,
                    ": groups ", groups, " must divide input channels ", input.size(1),
                    " and output channels ", weight.size(0));
  TORCH_CHECK_VALUE(weight.size(1) * groups == input.size(1), op, ": weight ", weight.sizes(), " with groups ",
                    groups, " expects ", weight.size(1) * groups, " input channels, input has ",
                    input.size(1), " (shape ", input.sizes(), ")");
  ConvShape s{input.size(0), input.size(1), input.size(2), input.size(3), weight.size(0),
              weight.size(2), weight.size(3), 0, 0};
  s.out_h = conv_output_size(s.height, s.kernel_h, stride[0], padding[0], dilation[0]);
  s.out_w = conv_output_size(s.width, s.kernel_w, stride[1], padding[1], dilation[1]);
  TORCH_CHECK_VALUE(s.out_h > 0 && s.out_w > 0, op, ": input ", input.sizes(), " is smaller than the kernel ",
                    weight.sizes());
  return s;
}

// An optional bias [out_channels] of the input's dtype and device.
inline void check_conv2d_bias(const char* op, const std::optional<at::Tensor>& bias, const at::Tensor& input,
                              int64_t out_channels) {
  if (!bias.has_value()) return;
  check_same_dtype_device(op, "bias", *bias, input);
  TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == out_channels, op, ": bias must have shape [",
                    out_channels, "], got ", bias->sizes());
}

inline ConvEpilogueShape check_conv2d_epilogue_args(
    const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& residual, at::IntArrayRef stride, at::IntArrayRef padding,
    at::IntArrayRef dilation, int64_t groups, c10::string_view activation, int64_t upscale) {
  const char* op = "conv2d_epilogue";
  const ConvShape s = check_conv2d_geometry(op, input, weight, stride, padding, dilation, groups);
  parse_activation(op, activation);
  TORCH_CHECK_VALUE(upscale >= 1 && s.out_channels % (upscale * upscale) == 0, op, ": upscale ", upscale,
                    " must be >= 1 and its square must divide the output channels ", s.out_channels);
  check_conv2d_bias(op, bias, input, s.out_channels);
  if (residual.has_value()) {
    check_same_dtype_device(op, "residual", *residual, input);
    const int64_t r = upscale;
    TORCH_CHECK_VALUE(residual->dim() == 4 && residual->size(0) == s.batch &&
                          residual->size(1) == s.out_channels / (r * r) && residual->size(2) == s.out_h * r &&
                          residual->size(3) == s.out_w * r,
                      op, ": residual must have the output shape [", s.batch, ", ", s.out_channels / (r * r),
                      ", ", s.out_h * r, ", ", s.out_w * r, "], got ", residual->sizes());
  }
  return s;
}

inline void check_gdn_args(const at::Tensor& input, const at::Tensor& beta, const at::Tensor& gamma) {
  const char* op = "gdn";
  check_floating_weight(op, "input", input);
  TORCH_CHECK_VALUE(input.dim() == 4, op, ": input must be 4-D [N, C, H, W], got shape ", input.sizes());
  const int64_t c = input.size(1);
  TORCH_CHECK_TYPE(beta.scalar_type() == input.scalar_type() && gamma.scalar_type() == input.scalar_type(), op,
                   ": beta and gamma must have the input dtype ", input.scalar_type(), ", got ",
                   beta.scalar_type(), " and ", gamma.scalar_type());
  TORCH_CHECK_VALUE(beta.device() == input.device() && gamma.device() == input.device(), op,
                    ": beta and gamma must be on the input device ", input.device());
  TORCH_CHECK_VALUE(beta.dim() == 1 && beta.size(0) == c, op, ": beta must have shape [", c, "], got ",
                    beta.sizes());
  TORCH_CHECK_VALUE(gamma.dim() == 2 && gamma.size(0) == c && gamma.size(1) == c, op,
                    ": gamma must have shape [", c, ", ", c, "], got ", gamma.sizes());
}

}  // namespace lwdvc
