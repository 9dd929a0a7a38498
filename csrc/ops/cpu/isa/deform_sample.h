// Per-ISA builds of the bilinear sampler behind the CPU deform_conv2d (the "deformable im2col").
//
// isa/deform_sample.cpp is compiled once per instruction set (DEFAULT, AVX2, AVX512) like
// isa/scale_channels.cpp; deform_sample_for_this_cpu() picks the build for the running CPU.
//
// One call fills the column matrix of one output row: col[wo, tap, channel] (row-major, leading
// dimension `col_ld`) holds the input, sampled at output pixel wo shifted by kernel tap `tap` and
// its offset, for every input channel. The row is processed in blocks of 32 output pixels; for
// each (tap, offset group) the four corner weights and the corner pixel are computed once per
// output pixel (vectorised across the block), then the group's channels are blended as contiguous
// runs of the channels-last input. A block's column rows and input neighbourhood stay in L1
// across all its (tap, group) passes.
//
// The input is read from a zero-bordered channels-last copy [N, H + 3, W + 2, C] (image at rows
// 1..H, columns 1..W): every corner of a point with -1 < y < H and -1 < x < W lies inside it, the
// border supplying the zeros of neighbours outside the image, and a point outside that range is
// sent to bottom-border row H + 1, whose four corners are all zero. No corner needs a bounds
// check and the result equals torchvision's, which skips those neighbours.
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <vector>

namespace lwdvc {

// Channels [src, src + length) of the input go to columns [dst + tap * tap_stride, ... + length)
// of every column row. One offset group is cut into several runs only when it straddles a
// convolution group (columns are ordered (conv group, tap, channel within the group)).
struct ChannelRun {
  int64_t src, length, dst;
};

struct DeformSampleJob {
  const void* input = nullptr;   // zero-bordered [N, H + 3, W + 2, C] (dense, see above)
  const void* offset = nullptr;  // [N, 2 * offset_groups * kh * kw, Ho, Wo], strides below
  c10::ScalarType dtype = c10::ScalarType::Float;  // of input, offset and columns
  int64_t channels = 0, height = 0, width = 0, out_w = 0;  // height and width of the image
  int64_t kernel_h = 0, kernel_w = 0, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t offset_stride_n = 0, offset_stride_c = 0, offset_stride_h = 0, offset_stride_w = 0;
  int64_t tap_stride = 0;  // column distance between two taps: channels per conv group
  int64_t col_ld = 0;      // columns per row: kh * kw * channels
  std::vector<std::vector<ChannelRun>> runs;  // [offset group] -> its channel runs
};

// Per-thread buffers of the sampler (sized by the sampler itself).
struct DeformScratch {
  std::vector<float> y, x;        // [block] sampling positions of one (tap, offset group)
  std::vector<float> weight;      // [4, block] bilinear weights of the four corners
  std::vector<int32_t> corner;    // [block] top-left corner's pixel index in the bordered image
};

// Fills col [Wo, col_ld] for output row `out_row` of image `n` (serial).
using DeformSampleRowFn = void (*)(const DeformSampleJob& job, int64_t n, int64_t out_row, void* col,
                                   DeformScratch& scratch);

void deform_sample_row_DEFAULT(const DeformSampleJob&, int64_t, int64_t, void*, DeformScratch&);
void deform_sample_row_AVX2(const DeformSampleJob&, int64_t, int64_t, void*, DeformScratch&);
void deform_sample_row_AVX512(const DeformSampleJob&, int64_t, int64_t, void*, DeformScratch&);

// The build for the best instruction set of this CPU.
DeformSampleRowFn deform_sample_for_this_cpu();

}  // namespace lwdvc
