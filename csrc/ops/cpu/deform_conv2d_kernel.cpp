// CPU kernel of deform_conv2d: channels-last bilinear sampling into a column tile, then a GEMM.
//
// The input is first copied into a zero-bordered channels-last buffer (one pass). The output rows
// are cut into tiles of whole rows (about kTileBytes of columns each) spread over the threads.
// Per tile, one thread samples the column matrix col [pixels, kh*kw*Cin] (per-ISA
// sampler, isa/deform_sample.cpp) and multiplies it with the packed weight [Cout, kh*kw*Cin/groups]
// (oneDNN's linear when groups == 1, else at::mm_out per group; single-threaded inside the
// parallel region) into the output: NCHW or channels_last as the input. The tile stays in the
// thread's cache between sampling and GEMM, and nothing of size [Ho*Wo, kh*kw*Cin] is allocated.
// float32 and bfloat16 (bf16: sampling in float, columns and GEMM operands in bf16, fp32
// accumulation inside the GEMM).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "../common/preconditions.h"
#include "isa/deform_sample.h"
#include "onednn_linear.h"

namespace lwdvc {

namespace {

constexpr int64_t kTileBytes = int64_t{512} << 10;  // column tile per thread (fits a 1 MiB L2)

// Runs of every offset group's channels (`sizes` consecutive channels per group); columns are
// ordered (conv group, tap, channel in group).
std::vector<std::vector<ChannelRun>> channel_runs(const std::vector<int64_t>& sizes, int64_t in_channels,
                                                  int64_t groups, int64_t taps) {
  const int64_t per_group = in_channels / groups;
  std::vector<std::vector<ChannelRun>> runs(sizes.size());
  int64_t start = 0;
  for (size_t og = 0; og < sizes.size(); ++og) {
    const int64_t end = start + sizes[og];
    for (int64_t c = start; c < end;) {
      const int64_t g = c / per_group;
      const int64_t stop = std::min(end, (g + 1) * per_group);
      runs[og].push_back(ChannelRun{c, stop - c, g * taps * per_group + (c - g * per_group)});
      c = stop;
    }
    start = end;
  }
  return runs;
}

// Zero-bordered channels-last copy [N, H + 3, W + 2, C] of input [N, C, H, W], the sampler's
// source (see isa/deform_sample.h). Other layouts go through lwdvc::to_channels_last first (a
// tiled transpose, much faster than a strided copy into the bordered buffer).
at::Tensor bordered_channels_last(const at::Tensor& any_input) {
  at::Tensor input = any_input;
  if (!input.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    static const auto to_channels_last = c10::Dispatcher::singleton()
                                             .findSchemaOrThrow("lwdvc::to_channels_last", "")
                                             .typed<at::Tensor(const at::Tensor&, std::optional<at::ScalarType>)>();
    input = to_channels_last.call(input, std::nullopt);
  }
  const int64_t height = input.size(2), width = input.size(3);
  auto out = at::empty({input.size(0), height + 3, width + 2, input.size(1)}, input.options());
  out.narrow(1, 0, 1).zero_();
  out.narrow(1, height + 1, 2).zero_();
  out.narrow(2, 0, 1).zero_();
  out.narrow(2, width + 1, 1).zero_();
  out.narrow(1, 1, height).narrow(2, 1, width).copy_(input.permute({0, 2, 3, 1}));
  return out;
}

// Wraps a dense buffer of the calling thread as a plain tensor (never an inference tensor of
// another thread's InferenceMode, so the GEMM may write into it from any thread).
at::Tensor wrap(const at::Tensor& t) {
  return at::from_blob(const_cast<void*>(t.const_data_ptr()), t.sizes(), t.strides(), t.options());
}

// out_tile = col_tile @ packed_weight^T (+ bias) for every conv group, on buffers wrapped as
// tensors inside the calling thread. `out` points at the tile's first output element; pixel and
// channel strides describe the output layout.
void multiply_tile(const at::Tensor& col_buffer, const at::Tensor& packed_weight,
                   const std::optional<at::Tensor>& bias_vector, int64_t groups, void* out, int64_t pixels,
                   int64_t pixel_stride, int64_t channel_stride) {
  const auto col = wrap(col_buffer).narrow(0, 0, pixels), packed = wrap(packed_weight);
  std::optional<at::Tensor> bias;
  if (bias_vector.has_value()) bias = wrap(*bias_vector);
  const int64_t out_channels = packed.size(0), per_out = out_channels / groups, depth = packed.size(1);
  auto tile = at::from_blob(out, {pixels, out_channels}, {pixel_stride, channel_stride}, col.options());
  if (groups == 1) {
    if (auto product = onednn_linear(col, packed, bias)) {  // else no oneDNN kernel here: BLAS below
      tile.copy_(*product);
      return;
    }
  }
  for (int64_t g = 0; g < groups; ++g) {
    auto out_g = tile.narrow(1, g * per_out, per_out);
    const auto col_g = col.narrow(1, g * depth, depth);
    const auto weight_g = packed.narrow(0, g * per_out, per_out);
    if (channel_stride == 1) {  // channels-last: [pixels, Cout_g] = col_g @ weight_g^T
      if (bias.has_value()) {
        at::addmm_out(out_g, bias->narrow(0, g * per_out, per_out), col_g, weight_g.t());
      } else {
        at::mm_out(out_g, col_g, weight_g.t());
      }
    } else {  // NCHW: [Cout_g, pixels] = weight_g @ col_g^T, a row-major matrix with row stride Ho*Wo
      auto out_t = out_g.t();
      if (bias.has_value()) {
        at::addmm_out(out_t, bias->narrow(0, g * per_out, per_out).unsqueeze(1), weight_g, col_g.t());
      } else {
        at::mm_out(out_t, weight_g, col_g.t());
      }
    }
  }
}

at::Tensor deform_conv2d_cpu(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& offset,
                             const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                             at::IntArrayRef dilation, int64_t groups, int64_t offset_groups,
                             at::OptionalIntArrayRef offset_group_sizes) {
  const auto s = require_deform_conv2d(input, weight, offset, bias, stride, padding, dilation, groups,
                                          offset_groups, offset_group_sizes);
  TORCH_CHECK_TYPE(input.scalar_type() == at::kFloat || input.scalar_type() == at::kBFloat16,
                   "deform_conv2d: the CPU kernel supports float32 and bfloat16, got ", input.scalar_type());
  TORCH_CHECK_VALUE((s.height + 3) * (s.width + 2) <= std::numeric_limits<int32_t>::max(),
                    "deform_conv2d: input of ", s.height, "x", s.width, " pixels is too large for the CPU kernel");
  const auto format = input.suggest_memory_format();
  auto out = at::empty({s.batch, s.out_channels, s.out_h, s.out_w}, input.options().memory_format(format));
  if (out.numel() == 0) return out;
  const auto x = bordered_channels_last(input);
  const auto off = offset.contiguous(offset.suggest_memory_format());
  const int64_t taps = s.kernel_h * s.kernel_w;
  // [Cout, kh, kw, Cin/groups]: row o holds output channel o's weights in column order.
  const auto packed = weight.permute({0, 2, 3, 1}).contiguous().view({s.out_channels, -1});
  std::optional<at::Tensor> bias_c;
  if (bias.has_value()) bias_c = bias->contiguous();

  DeformSampleJob job;
  job.input = x.const_data_ptr();
  job.offset = off.const_data_ptr();
  job.dtype = x.scalar_type();
  job.channels = s.in_channels;
  job.height = s.height;
  job.width = s.width;
  job.out_w = s.out_w;
  job.kernel_h = s.kernel_h;
  job.kernel_w = s.kernel_w;
  job.stride_h = stride[0];
  job.stride_w = stride[1];
  job.pad_h = padding[0];
  job.pad_w = padding[1];
  job.dilation_h = dilation[0];
  job.dilation_w = dilation[1];
  job.offset_stride_n = off.stride(0);
  job.offset_stride_c = off.stride(1);
  job.offset_stride_h = off.stride(2);
  job.offset_stride_w = off.stride(3);
  job.tap_stride = s.in_channels / groups;
  job.col_ld = taps * s.in_channels;
  const auto sizes = offset_group_sizes.has_value()
                         ? offset_group_sizes->vec()
                         : std::vector<int64_t>(offset_groups, s.in_channels / offset_groups);
  job.runs = channel_runs(sizes, s.in_channels, groups, taps);

  const int64_t element = static_cast<int64_t>(x.element_size());
  const int64_t rows_per_tile = std::clamp<int64_t>(kTileBytes / (s.out_w * job.col_ld * element), 1, s.out_h);
  const int64_t tiles_per_image = (s.out_h + rows_per_tile - 1) / rows_per_tile;
  const bool channels_last = format == at::MemoryFormat::ChannelsLast;
  const int64_t plane = s.out_h * s.out_w;
  auto* out_base = static_cast<char*>(out.mutable_data_ptr());
  const auto sample_row = deform_sample_for_this_cpu();

  at::parallel_for(0, s.batch * tiles_per_image, 1, [&](int64_t begin, int64_t end) {
    DeformScratch scratch;
    const auto col = at::empty({rows_per_tile * s.out_w, job.col_ld}, x.options());
    auto* col_base = static_cast<char*>(col.mutable_data_ptr());
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / tiles_per_image, row0 = (t % tiles_per_image) * rows_per_tile;
      const int64_t rows = std::min(rows_per_tile, s.out_h - row0);
      for (int64_t r = 0; r < rows; ++r) {
        sample_row(job, n, row0 + r, col_base + r * s.out_w * job.col_ld * element, scratch);
      }
      const int64_t first = channels_last ? (n * plane + row0 * s.out_w) * s.out_channels
                                          : n * s.out_channels * plane + row0 * s.out_w;
      multiply_tile(col, packed, bias_c, groups, out_base + first * element, rows * s.out_w,
                    channels_last ? s.out_channels : 1, channels_last ? 1 : plane);
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lwdvc, CPU, m) { m.impl("deform_conv2d", &deform_conv2d_cpu); }

}  // namespace lwdvc
