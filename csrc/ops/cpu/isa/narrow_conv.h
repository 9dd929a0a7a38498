// Direct 2-D convolution for few output channels (1..8), float32, channels_last.
//
// oneDNN computes output channels in blocks of 16, so a 3x3 conv 64 -> 2 costs as much as
// 64 -> 16. A compacted decoder has many such layers: a trained mask leaves whole channel
// groups at the pruner's floor (e.g. 2 of 16 or 7 of 64 channels). This kernel vectorises over
// input channels instead: every output value keeps a 16-lane partial sum per output channel
// (input channel c contributes to lane c % 16) over all kernel taps, then sums its lanes once.
// Several output pixels share each weight load. The input-channel tail is read with masked loads
// (weights zero-padded to whole 16-lane blocks), so nothing outside the input is touched.
//
// isa/narrow_conv.cpp has a body only in its AVX512 build (see scale_channels.h for the per-ISA
// builds); narrow_conv_for_this_cpu() is nullptr on other CPUs and callers fall back to oneDNN.
#pragma once

#include <cstdint>

namespace lwdvc {

constexpr int64_t kNarrowConvMaxOutChannels = 8;
constexpr int64_t kNarrowConvLanes = 16;

// out[n, oh, ow, o] = act(bias[o] + sum_{kh, kw, c} x[n, ih, iw, c] * weight[o, c, kh, kw]) (+ residual)
// with ih = oh * stride_h - pad_h + kh, iw = ow * stride_w - pad_w + kw (zero outside the input).
struct NarrowConvArgs {
  const float* input = nullptr;     // [N, H, W, C] (channels_last storage of N, C, H, W)
  const float* packed = nullptr;    // [KH * KW, OC, padded_channels], zero beyond C: narrow_conv_pack_weight
  const float* bias = nullptr;      // [OC] or nullptr
  const float* residual = nullptr;  // [N, OH, OW, OC] or nullptr, added after the activation
  const float* zeros = nullptr;     // [padded_channels] zeros: what taps outside the input read
  float* out = nullptr;             // [N, OH, OW, OC]
  int64_t batch = 0, channels = 0, height = 0, width = 0;
  int64_t out_channels = 0, padded_channels = 0;
  int64_t kernel_h = 0, kernel_w = 0, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t out_h = 0, out_w = 0;
  int activation = 0;  // Activation code of conv2d_epilogue.h
  float negative_slope = 0.f;
};

// Output rows [row_begin, row_end) of the flattened [N * OH] rows, serially.
using NarrowConvRowsFn = void (*)(const NarrowConvArgs& args, int64_t row_begin, int64_t row_end);

void narrow_conv_rows_AVX512(const NarrowConvArgs&, int64_t, int64_t);

// The AVX512 build on CPUs ATen runs with AVX512, else nullptr.
NarrowConvRowsFn narrow_conv_for_this_cpu();

// Whether conv2d_epilogue may route convolutions to the narrow kernel (default true; switched
// off to time the same decoder with oneDNN only, in one process).
bool narrow_conv_in_epilogue();
void set_narrow_conv_in_epilogue(bool enabled);

// Whether the narrow kernel beats oneDNN by >= 1.15x for this shape (float32, 2 threads,
// AVX-512, 128x224 maps; measured: docs/results/optimize.md, "Narrow convolutions"): few output
// channels against enough input channels to fill the 16 lanes.
inline bool narrow_conv_pays(int64_t in_channels, int64_t out_channels, int64_t kernel_area) {
  int64_t limit = 0;
  if (kernel_area >= 9) {
    limit = in_channels >= 32 ? 8 : in_channels >= 16 ? 6 : in_channels >= 8 ? 4 : 0;
  } else {
    limit = in_channels >= 128 ? 8
            : in_channels >= 64 ? 6
            : in_channels >= 32 ? 4
            : in_channels >= 16 ? 3
            : in_channels >= 8  ? 1
                                : 0;
  }
  return out_channels >= 1 && out_channels <= limit;
}

}  // namespace lwdvc
