// CPU kernel of conv2d_epilogue: oneDNN convolution, epilogue fused where it pays.
//
// * No shuffle, and either no residual or no activation: one oneDNN call with the bias and the
//   activation (or the residual sum) as post-ops (mkldnn::_convolution_pointwise), so the
//   output is written once.
// * channels_last, groups == 1, otherwise: oneDNN with the bias and activation as post-ops,
//   the weight's output channels reordered sub-pixel-major so that the PixelShuffle store (and
//   the residual sum) is one vectorised pass over contiguous blocks (ATen's strided copy / add).
// * 1x1, stride 1, on at most kMatrixProductMaxPixels output pixels: one oneDNN matrix product
//   with the activation as post-op (the residual added in place).
// * float32, channels_last, no shuffle, groups == 1, few output channels (1-8) against enough input
//   channels (narrow_conv_pays): the narrow direct conv of isa/narrow_conv.h (AVX-512), bias,
//   activation and residual in its store; oneDNN would pad the output channels to 16.
// * Anything else: the convolution with its bias, then one scalar pass that applies the
//   activation, adds the residual and stores into the PixelShuffle layout. A ReLU whose conv
//   output may hold NaN goes this way too: oneDNN's ReLU post-op is max(y, 0), which turns NaN
//   into 0, where F.relu (and apply_activation) keep it.
// The output keeps the input's memory format (NCHW or channels_last).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Version.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "../common/conv2d_epilogue.h"
#include "../common/preconditions.h"
#include "cpu_capability.h"
#include "isa/narrow_conv.h"
#include "onednn_linear.h"

namespace lwdvc {
namespace {

// out[shuffled] = act(y) + residual[shuffled] over the whole conv output y [N, C, H, W] (dense,
// NCHW or channels_last); out and residual are dense in the same memory format. The loops walk
// both tensors along their contiguous dim: for channels_last, one (row, column, sub-pixel) of y
// feeds C/r^2 consecutive output channels (source stride r^2); for NCHW, one row of a conv
// channel feeds every r-th column of one output row.
template <typename scalar_t>
void apply_epilogue(const scalar_t* y, scalar_t* out, const scalar_t* residual, int64_t batch,
                    int64_t channels, int64_t height, int64_t width, int64_t r, Activation act,
                    double negative_slope, bool channels_last) {
  using acc_t = at::opmath_type<scalar_t>;
  const auto slope = static_cast<acc_t>(negative_slope);
  const int64_t rr = r * r, out_channels = channels / rr, out_h = height * r, out_w = width * r;
  auto finish = [&](scalar_t value, int64_t o) {
    acc_t v = apply_activation<acc_t>(static_cast<acc_t>(value), act, slope);
    if (residual != nullptr) v += static_cast<acc_t>(residual[o]);
    out[o] = static_cast<scalar_t>(v);
  };
  if (channels_last) {
    at::parallel_for(0, batch * height, 1, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t n = row / height, h = row % height;
        for (int64_t w = 0; w < width; ++w) {
          const scalar_t* src = y + (row * width + w) * channels;
          for (int64_t sub = 0; sub < rr; ++sub) {
            const auto dst = pixel_shuffle_index(sub, h, w, r);
            const int64_t o = ((n * out_h + dst.row) * out_w + dst.col) * out_channels;
            for (int64_t oc = 0; oc < out_channels; ++oc) finish(src[oc * rr + sub], o + oc);
          }
        }
      }
    });
    return;
  }
  at::parallel_for(0, batch * channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t n = plane / channels, c = plane % channels;
      for (int64_t h = 0; h < height; ++h) {
        const scalar_t* src = y + (plane * height + h) * width;
        const auto dst = pixel_shuffle_index(c, h, 0, r);
        const int64_t o = ((n * out_channels + dst.channel) * out_h + dst.row) * out_w + dst.col;
        for (int64_t w = 0; w < width; ++w) finish(src[w], o + w * r);
      }
    }
  });
}

// oneDNN's fused convolution (the op torch's own CPU fusion passes emit), or nullopt.
std::optional<c10::OperatorHandle> onednn_conv(const char* overload) {
  return c10::Dispatcher::singleton().findSchema({"mkldnn::_convolution_pointwise", overload});
}

bool onednn_applies(const at::Tensor& input) {
  return at::hasMKLDNN() && (input.scalar_type() == at::kFloat || input.scalar_type() == at::kBFloat16);
}

// max |t| (infinity when t holds a NaN or an infinity; 0 when empty), from one read of t. A dense
// tensor is reduced as the flat run of memory it covers: ATen reduces a channels_last tensor
// over all dims 20x slower (4.4 against 0.21 ms for 64x128x224 float32, one thread).
double max_abs(const at::Tensor& t) {
  if (t.numel() == 0) return 0.0;
  const auto flat = t.is_non_overlapping_and_dense() ? t.as_strided({t.numel()}, {1}, t.storage_offset()) : t;
  const auto [lo, hi] = at::aminmax(flat);
  const double a = lo.item<double>(), b = hi.item<double>();
  if (!std::isfinite(a) || !std::isfinite(b)) return INFINITY;
  return std::fmax(std::fabs(a), std::fabs(b));
}

// Whether oneDNN's ReLU post-op gives what F.relu does: a conv output is NaN only where an
// operand is NaN or infinite or a partial sum overflows (inf - inf), so when every operand is
// finite and |bias| + (taps * cin) * max|x| * max|w| stays below the float32 (and bfloat16)
// range, no output is NaN and max(y, 0) equals F.relu. Costs one read of the input.
bool relu_post_op_is_exact(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  const double terms = static_cast<double>(weight.size(1)) * static_cast<double>(weight.size(2) * weight.size(3));
  const double bound = max_abs(input) * max_abs(weight) * terms + (bias.has_value() ? max_abs(*bias) : 0.0);
  return bound < 1e38;  // false for infinity and NaN; float32 reaches 3.4e38
}

std::vector<int64_t> to_vector(at::IntArrayRef v) { return {v.begin(), v.end()}; }

// One oneDNN convolution with the bias and either the activation or the residual sum as
// post-ops (never both: oneDNN's fused op applies a unary post-op after the sum, the epilogue
// needs it before). Output in `format`; nullopt when the fused op is not registered.
std::optional<at::Tensor> onednn_convolution(const at::Tensor& input, const at::Tensor& weight,
                                             const std::optional<at::Tensor>& bias,
                                             const std::optional<at::Tensor>& residual, at::IntArrayRef stride,
                                             at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                             const std::string& activation, double negative_slope,
                                             at::MemoryFormat format) {
  const bool binary = residual.has_value();
  const auto op = onednn_conv(binary ? "binary" : "");
  if (!op.has_value()) return std::nullopt;
  std::vector<c10::IValue> stack;
  stack.emplace_back(input);
  if (binary) stack.emplace_back(residual->contiguous(format));
  stack.emplace_back(weight.contiguous(format));
  // contiguous: the fused op reads a strided bias as if it were dense
  stack.emplace_back(bias.has_value() ? c10::IValue(bias->contiguous()) : c10::IValue());
  stack.emplace_back(to_vector(padding));
  stack.emplace_back(to_vector(stride));
  stack.emplace_back(to_vector(dilation));
  stack.emplace_back(groups);
  c10::List<std::optional<at::Scalar>> scalars;
  if (activation == "leaky_relu") scalars.push_back(at::Scalar(negative_slope));
  if (binary) {
    stack.emplace_back(std::string("add"));
    stack.emplace_back(c10::IValue());  // alpha
    stack.emplace_back(c10::IValue());  // no unary post-op after the sum
    stack.emplace_back(scalars);
    stack.emplace_back(c10::IValue());
  } else {
    stack.emplace_back(activation);
    stack.emplace_back(scalars);
    stack.emplace_back(std::string(""));
  }
  op->callBoxed(&stack);
  return stack[0].toTensor().contiguous(format);
}

// Output channel order that makes PixelShuffle(r) a copy of contiguous blocks in channels_last:
// position sub * C + oc holds conv channel oc * r^2 + sub (C = out_channels / r^2).
at::Tensor sub_pixel_major_order(int64_t out_channels, int64_t r, const at::TensorOptions& options) {
  const int64_t rr = r * r;
  return at::arange(out_channels, options.dtype(at::kLong)).view({out_channels / rr, rr}).t().reshape({-1});
}

// PixelShuffle(r) of y [N, r^2*C, H, W] (channels_last, channels in sub-pixel-major order) plus
// the optional residual [N, C, H*r, W*r] into a new channels_last tensor. Both are viewed as
// [N, H, W, dy, dx*C + oc]: for each input pixel and sub-pixel row dy the r*C values are
// contiguous in y and in the output, so the pass is a vectorised strided copy (or add).
at::Tensor shuffle_sub_pixel_major(const at::Tensor& y, const std::optional<at::Tensor>& residual, int64_t r) {
  const int64_t n = y.size(0), channels = y.size(1) / (r * r), h = y.size(2), w = y.size(3);
  auto out = at::empty({n, channels, h * r, w * r}, y.options().memory_format(at::MemoryFormat::ChannelsLast));
  const std::vector<int64_t> sizes{n, h, w, r, r * channels};
  const std::vector<int64_t> y_strides{h * w * r * r * channels, w * r * r * channels, r * r * channels,
                                       r * channels, 1};
  const std::vector<int64_t> out_strides{h * r * w * r * channels, r * w * r * channels, r * channels,
                                         w * r * channels, 1};
  auto out_view = out.as_strided(sizes, out_strides);
  const auto y_view = y.as_strided(sizes, y_strides);
  if (residual.has_value()) {
    const auto res = residual->contiguous(at::MemoryFormat::ChannelsLast);
    at::add_out(out_view, y_view, res.as_strided(sizes, out_strides));
  } else {
    out_view.copy_(y_view);
  }
  return out;
}

// channels_last, groups == 1, and an epilogue oneDNN cannot fuse alone (a PixelShuffle, or an
// activation before the residual sum): the conv with bias and activation in oneDNN, then one
// vectorised pass for the residual sum and the shuffle. nullopt when oneDNN is unavailable.
std::optional<at::Tensor> conv_then_vector_pass(const at::Tensor& input, const at::Tensor& weight,
                                                const std::optional<at::Tensor>& bias,
                                                const std::optional<at::Tensor>& residual, at::IntArrayRef stride,
                                                at::IntArrayRef padding, at::IntArrayRef dilation,
                                                const std::string& activation, double negative_slope,
                                                int64_t upscale) {
  const auto format = at::MemoryFormat::ChannelsLast;
  if (upscale == 1) {
    auto y = onednn_convolution(input, weight, bias, std::nullopt, stride, padding, dilation, 1, activation,
                                negative_slope, format);
    if (y.has_value() && residual.has_value()) y->add_(residual->contiguous(format));
    return y;
  }
  const auto order = sub_pixel_major_order(weight.size(0), upscale, weight.options());
  std::optional<at::Tensor> reordered_bias;
  if (bias.has_value()) reordered_bias = bias->index_select(0, order);
  const auto y = onednn_convolution(input, weight.index_select(0, order), reordered_bias, std::nullopt, stride,
                                    padding, dilation, 1, activation, negative_slope, format);
  if (!y.has_value()) return std::nullopt;
  return shuffle_sub_pixel_major(*y, residual, upscale);
}

// 1x1 convolutions on at most this many output pixels run as one oneDNN matrix product: there,
// oneDNN's convolution call costs up to 2.7x the product (measured, 384 -> 320 channels: 16
// pixels 106 -> 42 us, a batch of 256 1x1 maps 482 -> 177 us; a 16x16 map breaks even), the case
// of latents decoded a few positions at a time.
constexpr int64_t kMatrixProductMaxPixels = 256;

bool is_pointwise_on_few_pixels(const at::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding,
                                int64_t groups, int64_t upscale, int64_t pixels) {
  return weight.size(2) == 1 && weight.size(3) == 1 && stride[0] == 1 && stride[1] == 1 && padding[0] == 0 &&
         padding[1] == 0 && groups == 1 && upscale == 1 && pixels <= kMatrixProductMaxPixels;
}

// y = act(rows @ W^T + b) (+ residual) with rows = the input's pixels [N*H*W, Cin], through
// oneDNN's linear op with the activation as post-op; output in `format`. nullopt when oneDNN
// has no such kernel here.
std::optional<at::Tensor> pointwise_as_matrix_product(const at::Tensor& input, const at::Tensor& weight,
                                                      const std::optional<at::Tensor>& bias,
                                                      const std::optional<at::Tensor>& residual,
                                                      const std::string& activation, double negative_slope,
                                                      at::MemoryFormat format) {
  const int64_t n = input.size(0), channels = input.size(1), h = input.size(2), w = input.size(3);
  const int64_t out_channels = weight.size(0);
  auto rows = onednn_linear(input.permute({0, 2, 3, 1}).reshape({-1, channels}),
                            weight.reshape({out_channels, channels}).contiguous(), bias, activation, negative_slope);
  if (!rows.has_value()) return std::nullopt;  // [N*H*W, Cout]
  if (residual.has_value()) rows->add_(residual->permute({0, 2, 3, 1}).reshape({-1, out_channels}));
  return rows->view({n, h, w, out_channels}).permute({0, 3, 1, 2}).contiguous(format);
}

// [KH * KW, OC, C rounded up to 16] float32, zero beyond C: the narrow kernel's weight layout.
at::Tensor narrow_conv_pack_weight(const at::Tensor& weight) {
  const int64_t out_channels = weight.size(0), channels = weight.size(1);
  const int64_t taps = weight.size(2) * weight.size(3);
  const int64_t padded = (channels + kNarrowConvLanes - 1) / kNarrowConvLanes * kNarrowConvLanes;
  auto packed = at::zeros({taps, out_channels, padded}, weight.options());
  packed.narrow(2, 0, channels).copy_(weight.permute({2, 3, 0, 1}).reshape({taps, out_channels, channels}));
  return packed;
}

// The narrow direct conv (isa/narrow_conv.h) with bias, activation and residual fused: output
// channels_last. Requires float32, groups 1, dilation 1, 1-8 output channels and a CPU with the
// AVX512 build (rows_fn).
at::Tensor run_narrow_convolution(NarrowConvRowsFn rows_fn, const at::Tensor& input, const at::Tensor& weight,
                                  const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& residual,
                                  at::IntArrayRef stride, at::IntArrayRef padding, Activation act,
                                  double negative_slope, const ConvShape& s) {
  const auto x = input.contiguous(at::MemoryFormat::ChannelsLast);
  const auto packed = narrow_conv_pack_weight(weight);
  at::Tensor bias_c, residual_c;
  if (bias.has_value()) bias_c = bias->contiguous();
  if (residual.has_value()) residual_c = residual->contiguous(at::MemoryFormat::ChannelsLast);
  auto out = at::empty({s.batch, s.out_channels, s.out_h, s.out_w},
                       input.options().memory_format(at::MemoryFormat::ChannelsLast));
  const auto zeros = at::zeros({packed.size(2)}, packed.options());
  NarrowConvArgs a;
  a.input = x.const_data_ptr<float>();
  a.zeros = zeros.const_data_ptr<float>();
  a.packed = packed.const_data_ptr<float>();
  a.bias = bias_c.defined() ? bias_c.const_data_ptr<float>() : nullptr;
  a.residual = residual_c.defined() ? residual_c.const_data_ptr<float>() : nullptr;
  a.out = out.mutable_data_ptr<float>();
  a.batch = s.batch;
  a.channels = x.size(1);
  a.height = x.size(2);
  a.width = x.size(3);
  a.out_channels = s.out_channels;
  a.padded_channels = packed.size(2);
  a.kernel_h = weight.size(2);
  a.kernel_w = weight.size(3);
  a.stride_h = stride[0];
  a.stride_w = stride[1];
  a.pad_h = padding[0];
  a.pad_w = padding[1];
  a.out_h = s.out_h;
  a.out_w = s.out_w;
  a.activation = static_cast<int>(act);
  a.negative_slope = static_cast<float>(negative_slope);
  if (out.numel() > 0) {
    at::parallel_for(0, s.batch * s.out_h, 1, [&](int64_t begin, int64_t end) { rows_fn(a, begin, end); });
  }
  return out;
}

// conv2d_epilogue's narrow path: nullopt where the narrow kernel does not apply or does not pay.
std::optional<at::Tensor> narrow_convolution(const at::Tensor& input, const at::Tensor& weight,
                                             const std::optional<at::Tensor>& bias,
                                             const std::optional<at::Tensor>& residual, at::IntArrayRef stride,
                                             at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                             Activation act, double negative_slope, const ConvShape& s) {
  const auto rows_fn = narrow_conv_in_epilogue() ? narrow_conv_for_this_cpu() : nullptr;
  if (rows_fn == nullptr || input.scalar_type() != at::kFloat || groups != 1 || dilation[0] != 1 ||
      dilation[1] != 1 || !input.is_contiguous(at::MemoryFormat::ChannelsLast) ||
      !narrow_conv_pays(weight.size(1), weight.size(0), weight.size(2) * weight.size(3))) {
    return std::nullopt;
  }
  return run_narrow_convolution(rows_fn, input, weight, bias, residual, stride, padding, act, negative_slope, s);
}

// The conv2d_narrow op: the narrow kernel whenever it can run (tests and benchmarks call it
// directly; conv2d_epilogue uses it only where it pays).
at::Tensor conv2d_narrow_cpu(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                             const std::optional<at::Tensor>& residual, at::IntArrayRef stride,
                             at::IntArrayRef padding, c10::string_view activation, double negative_slope) {
  const std::vector<int64_t> dilation{1, 1};
  const auto s = require_conv2d_epilogue("conv2d_narrow", input, weight, bias, residual, stride, padding, dilation,
                                         1, 1);
  const Activation act = parse_activation("conv2d_narrow", activation);
  TORCH_CHECK(input.scalar_type() == at::kFloat, "conv2d_narrow: input must be float32, got ",
              input.scalar_type());
  TORCH_CHECK(s.out_channels <= kNarrowConvMaxOutChannels, "conv2d_narrow: at most ", kNarrowConvMaxOutChannels,
              " output channels, got ", s.out_channels);
  const auto rows_fn = narrow_conv_for_this_cpu();
  TORCH_CHECK(rows_fn != nullptr, "conv2d_narrow: needs a CPU with AVX-512 (ATen CPU capability here: ",
              cpu_capability_name(), ")");
  return run_narrow_convolution(rows_fn, input, weight, bias, residual, stride, padding, act, negative_slope, s)
      .contiguous(input.suggest_memory_format());
}

at::Tensor conv2d_epilogue_cpu(const at::Tensor& input, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& residual,
                               at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                               int64_t groups, c10::string_view activation, double negative_slope,
                               int64_t upscale) {
  const auto s = require_conv2d_epilogue("conv2d_epilogue", input, weight, bias, residual, stride, padding,
                                         dilation, groups, upscale);
  const Activation act = parse_activation("conv2d_epilogue", activation);
  const auto format = input.suggest_memory_format();
  const std::string act_name(activation);

  if (upscale == 1) {
    if (auto y = narrow_convolution(input, weight, bias, residual, stride, padding, dilation, groups, act,
                                    negative_slope, s)) {
      return y->contiguous(format);
    }
  }
  if (onednn_applies(input) && (act != Activation::kRelu || relu_post_op_is_exact(input, weight, bias))) {
    if (is_pointwise_on_few_pixels(weight, stride, padding, groups, upscale, s.batch * s.out_h * s.out_w)) {
      if (auto y = pointwise_as_matrix_product(input, weight, bias, residual, act_name, negative_slope, format)) {
        return *y;
      }
    }
    if (upscale == 1 && (!residual.has_value() || act == Activation::kNone)) {
      if (auto y = onednn_convolution(input, weight, bias, residual, stride, padding, dilation, groups, act_name,
                                      negative_slope, format)) {
        return *y;
      }
    } else if (format == at::MemoryFormat::ChannelsLast && groups == 1) {
      if (auto y = conv_then_vector_pass(input, weight, bias, residual, stride, padding, dilation, act_name,
                                         negative_slope, upscale)) {
        return *y;
      }
    }
  }

  auto y = at::convolution(input, weight.contiguous(format), bias, stride, padding, dilation, false, {0, 0}, groups)
               .contiguous(format);
  if (upscale == 1 && !residual.has_value() && act == Activation::kNone) return y;
  const int64_t r = upscale;
  auto out = r == 1 ? y
                    : at::empty({s.batch, s.out_channels / (r * r), s.out_h * r, s.out_w * r},
                                y.options().memory_format(format));
  at::Tensor res;
  if (residual.has_value()) res = residual->contiguous(format);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, y.scalar_type(), "lwdvc_conv2d_epilogue", [&] {
    apply_epilogue<scalar_t>(y.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(),
                             res.defined() ? res.const_data_ptr<scalar_t>() : nullptr, s.batch, s.out_channels,
                             s.out_h, s.out_w, r, act, negative_slope, format == at::MemoryFormat::ChannelsLast);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lwdvc, CPU, m) {
  m.impl("conv2d_epilogue", &conv2d_epilogue_cpu);
  m.impl("conv2d_narrow", &conv2d_narrow_cpu);
}

}  // namespace lwdvc
