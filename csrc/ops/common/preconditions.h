// Memory-safety preconditions of the C++ kernels, shared by the CPU and CUDA backends.
//
// The ops' argument checks, with the messages users see, live once in Python
// (lwdvc_kernels/ops/validation.py, fused_validation.py, deform_conv2d_validation.py): the
// functional API runs them before dispatch and the fake kernels run them too, so every backend
// rejects bad input alike. A kernel reached directly through torch.ops.lwdvc.* only checks here
// what keeps it from reading or writing out of bounds, with a RuntimeError naming the condition.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <c10/util/safe_numerics.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "conv2d_epilogue.h"

#define LWDVC_REQUIRE(op, cond)                                                                        \
  TORCH_CHECK((cond), op, ": precondition failed: " #cond                                              \
              " (call it through lwdvc_kernels.ops for a message naming the bad argument)")

namespace lwdvc {

inline bool is_floating(const at::Tensor& t) { return at::isFloatingType(t.scalar_type()); }

inline bool same_dtype_device(const at::Tensor& t, const at::Tensor& like) {
  return t.scalar_type() == like.scalar_type() && t.device() == like.device();
}

// Wrapped (non-negative) `dim` of `t`.
inline int64_t require_dim(const char* op, const at::Tensor& t, int64_t dim) {
  LWDVC_REQUIRE(op, t.dim() > 0 && dim >= -t.dim() && dim < t.dim());
  return dim < 0 ? dim + t.dim() : dim;
}

// A floating `x` and a 1-D float / bool `mask` [x.size(dim)] on its device; returns the wrapped dim.
inline int64_t require_channel_mask(const char* op, const at::Tensor& x, const at::Tensor& mask, int64_t dim) {
  const int64_t d = require_dim(op, x, dim);
  LWDVC_REQUIRE(op, is_floating(x) && (is_floating(mask) || mask.scalar_type() == at::kBool));
  LWDVC_REQUIRE(op, mask.dim() == 1 && mask.size(0) == x.size(d) && mask.device() == x.device());
  return d;
}

// The list form: one mask and dim per tensor, all on one device; returns the wrapped dims.
inline std::vector<int64_t> require_channel_masks(const char* op, at::TensorList xs, at::TensorList masks,
                                                  at::IntArrayRef dims) {
  LWDVC_REQUIRE(op, !xs.empty() && xs.size() == masks.size() && xs.size() == dims.size());
  std::vector<int64_t> wrapped;
  wrapped.reserve(xs.size());
  for (size_t k = 0; k < xs.size(); ++k) {
    wrapped.push_back(require_channel_mask(op, xs[k], masks[k], dims[k]));
    LWDVC_REQUIRE(op, xs[k].device() == xs[0].device());
  }
  return wrapped;
}

// Floating weights on one device with equally many channels along their dims; the wrapped dims.
inline std::vector<int64_t> require_coupled_channels(const char* op, at::TensorList weights, at::IntArrayRef dims) {
  LWDVC_REQUIRE(op, !weights.empty() && weights.size() == dims.size());
  std::vector<int64_t> wrapped;
  wrapped.reserve(dims.size());
  for (size_t k = 0; k < weights.size(); ++k) {
    wrapped.push_back(require_dim(op, weights[k], dims[k]));
    LWDVC_REQUIRE(op, is_floating(weights[k]) && weights[k].device() == weights[0].device());
    LWDVC_REQUIRE(op, weights[k].size(wrapped[k]) == weights[0].size(wrapped[0]));
  }
  return wrapped;
}

// A floating 4-D [N, C, H, W] tensor.
inline void require_image(const char* op, const at::Tensor& t) { LWDVC_REQUIRE(op, is_floating(t) && t.dim() == 4); }

// Sizes of a 2-D convolution (conv2d_epilogue, conv2d_narrow, deform_conv2d).
struct ConvShape {
  int64_t batch, in_channels, height, width;
  int64_t out_channels, kernel_h, kernel_w, out_h, out_w;  // conv output (before any shuffle)
};

// a * b, a + b and the product of `sizes` (times `itemsize` bytes) in int64, or a RuntimeError
// naming `what` when they overflow: kernels index with int64 and must not wrap around.
inline int64_t checked_mul(const char* op, const char* what, int64_t a, int64_t b) {
  int64_t out = 0;
  TORCH_CHECK(!c10::mul_overflows(a, b, &out), op, ": ", what, " overflows int64 (", a, " * ", b, ")");
  return out;
}

inline int64_t checked_add(const char* op, const char* what, int64_t a, int64_t b) {
  int64_t out = 0;
  TORCH_CHECK(!c10::add_overflows(a, b, &out), op, ": ", what, " overflows int64 (", a, " + ", b, ")");
  return out;
}

inline int64_t checked_extent(const char* op, const char* what, std::initializer_list<int64_t> sizes,
                              int64_t itemsize) {
  int64_t count = 1;
  for (const int64_t size : sizes) count = checked_mul(op, what, count, size);
  checked_mul(op, what, count, itemsize);  // its bytes too
  return count;
}

// Padded length in + 2 * pad and dilated kernel extent dilation * (kernel - 1) + 1 along one dim,
// in checked int64; a RuntimeError unless the kernel fits in the padded input (as F.conv2d needs).
inline int64_t require_conv_output_size(const char* op, int64_t in, int64_t kernel, int64_t stride,
                                        int64_t padding, int64_t dilation) {
  const int64_t padded = checked_add(op, "the padded input size", in, checked_mul(op, "the padding", 2, padding));
  const int64_t extent =
      checked_add(op, "the dilated kernel size", checked_mul(op, "the dilated kernel size", dilation, kernel - 1), 1);
  TORCH_CHECK(padded >= extent, op, ": the kernel (", kernel, " with dilation ", dilation, ", extent ", extent,
              ") is larger than the padded input (", in, " + 2 * ", padding, " = ", padded,
              ") (call it through lwdvc_kernels.ops for a message naming the bad argument)");
  return conv_output_size(in, kernel, stride, padding, dilation);
}

// 4-D input and weight of one dtype and device, two-entry positive stride and dilation,
// non-negative padding, groups dividing both channel counts, a kernel no larger than the padded
// input; padded input, output and im2col sizes whose element and byte counts fit in int64.
inline ConvShape require_conv2d(const char* op, const at::Tensor& input, const at::Tensor& weight,
                                at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                                int64_t groups) {
  require_image(op, input);
  LWDVC_REQUIRE(op, weight.dim() == 4 && same_dtype_device(weight, input));
  LWDVC_REQUIRE(op, stride.size() == 2 && padding.size() == 2 && dilation.size() == 2);
  LWDVC_REQUIRE(op, stride[0] > 0 && stride[1] > 0 && dilation[0] > 0 && dilation[1] > 0 && padding[0] >= 0 &&
                        padding[1] >= 0);
  LWDVC_REQUIRE(op, groups > 0 && weight.size(0) % groups == 0 && weight.size(1) * groups == input.size(1));
  ConvShape s{input.size(0), input.size(1), input.size(2), input.size(3), weight.size(0),
              weight.size(2), weight.size(3), 0, 0};
  s.out_h = require_conv_output_size(op, s.height, s.kernel_h, stride[0], padding[0], dilation[0]);
  s.out_w = require_conv_output_size(op, s.width, s.kernel_w, stride[1], padding[1], dilation[1]);
  LWDVC_REQUIRE(op, s.out_h > 0 && s.out_w > 0);
  const int64_t itemsize = static_cast<int64_t>(input.element_size());
  checked_extent(op, "the padded input", {s.batch, s.in_channels, s.height + 2 * padding[0], s.width + 2 * padding[1]},
                 itemsize);
  checked_extent(op, "the output", {s.batch, s.out_channels, s.out_h, s.out_w}, itemsize);
  checked_extent(op, "the im2col buffer", {s.in_channels / groups, s.kernel_h, s.kernel_w, s.out_h, s.out_w},
                 itemsize);
  return s;
}

// An optional bias [out_channels] of the input's dtype and device.
inline void require_bias(const char* op, const std::optional<at::Tensor>& bias, const at::Tensor& input,
                         int64_t out_channels) {
  if (bias.has_value()) {
    LWDVC_REQUIRE(op, same_dtype_device(*bias, input) && bias->dim() == 1 && bias->size(0) == out_channels);
  }
}

// The activation named in the schema ("none", "relu", "leaky_relu").
inline Activation parse_activation(const char* op, c10::string_view name) {
  if (name == "none") return Activation::kNone;
  if (name == "relu") return Activation::kRelu;
  if (name == "leaky_relu") return Activation::kLeakyRelu;
  TORCH_CHECK(false, op, ": unknown activation '", std::string(name), "'");
}

// conv2d_epilogue: the conv, bias, an upscale whose square divides the output channels and an
// optional residual of the (shuffled) output shape.
inline ConvShape require_conv2d_epilogue(const char* op, const at::Tensor& input, const at::Tensor& weight,
                                         const std::optional<at::Tensor>& bias,
                                         const std::optional<at::Tensor>& residual, at::IntArrayRef stride,
                                         at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                         int64_t upscale) {
  const ConvShape s = require_conv2d(op, input, weight, stride, padding, dilation, groups);
  const int64_t r = upscale;
  LWDVC_REQUIRE(op, r >= 1);
  const int64_t rr = checked_mul(op, "upscale^2", r, r);
  LWDVC_REQUIRE(op, s.out_channels % rr == 0);
  const int64_t shuffled_h = checked_mul(op, "the shuffled output height", s.out_h, r);
  const int64_t shuffled_w = checked_mul(op, "the shuffled output width", s.out_w, r);
  checked_extent(op, "the shuffled output", {s.batch, s.out_channels / rr, shuffled_h, shuffled_w},
                 static_cast<int64_t>(input.element_size()));
  require_bias(op, bias, input, s.out_channels);
  if (residual.has_value()) {
    LWDVC_REQUIRE(op, same_dtype_device(*residual, input) && residual->dim() == 4 &&
                          residual->size(0) == s.batch && residual->size(1) == s.out_channels / rr &&
                          residual->size(2) == shuffled_h && residual->size(3) == shuffled_w);
  }
  return s;
}

// gdn: input [N, C, H, W], beta [C] and gamma [C, C] of its dtype and device.
inline void require_gdn(const at::Tensor& input, const at::Tensor& beta, const at::Tensor& gamma) {
  const char* op = "gdn";
  require_image(op, input);
  const int64_t c = input.size(1);
  LWDVC_REQUIRE(op, same_dtype_device(beta, input) && beta.dim() == 1 && beta.size(0) == c);
  LWDVC_REQUIRE(op, same_dtype_device(gamma, input) && gamma.dim() == 2 && gamma.size(0) == c && gamma.size(1) == c);
}

// to_channels_last: a floating 4-D input and floating output dtype; returns the output dtype.
inline at::ScalarType require_to_channels_last(const at::Tensor& input, std::optional<at::ScalarType> dtype) {
  const char* op = "to_channels_last";
  require_image(op, input);
  const auto out = dtype.value_or(input.scalar_type());
  LWDVC_REQUIRE(op, at::isFloatingType(out));
  return out;
}

// deform_conv2d: the conv, bias, offset [N, 2*offset_groups*kh*kw, Ho, Wo] and offset groups that
// split the input channels (equally, or as offset_group_sizes says).
inline ConvShape require_deform_conv2d(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& offset,
                                       const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                       at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                       int64_t offset_groups, at::OptionalIntArrayRef offset_group_sizes) {
  const char* op = "deform_conv2d";
  const ConvShape s = require_conv2d(op, input, weight, stride, padding, dilation, groups);
  require_bias(op, bias, input, s.out_channels);
  if (offset_group_sizes.has_value()) {
    int64_t total = 0;
    bool non_negative = true;
    for (const int64_t size : *offset_group_sizes) {
      non_negative = non_negative && size >= 0;
      if (non_negative) total = checked_add(op, "the sum of offset_group_sizes", total, size);
    }
    LWDVC_REQUIRE(op, static_cast<int64_t>(offset_group_sizes->size()) == offset_groups && non_negative &&
                          total == s.in_channels);
  } else {
    LWDVC_REQUIRE(op, offset_groups > 0 && s.in_channels % offset_groups == 0);
  }
  const int64_t offset_channels =
      checked_extent(op, "the offset channels", {2, offset_groups, s.kernel_h, s.kernel_w}, 1);
  LWDVC_REQUIRE(op, same_dtype_device(offset, input) && offset.dim() == 4 && offset.size(0) == s.batch &&
                        offset.size(1) == offset_channels &&
                        offset.size(2) == s.out_h && offset.size(3) == s.out_w);
  return s;
}

}  // namespace lwdvc
