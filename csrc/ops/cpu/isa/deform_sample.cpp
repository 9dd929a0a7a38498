// The bilinear sampler of deform_conv2d, compiled once per instruction set (see deform_sample.h).
//
// Sampling rule (DCNv1, as torchvision's kernel): tap (i, j) of output pixel (ho, wo) reads the
// input at y = ho*stride_h - pad_h + i*dilation_h + dy, x = wo*stride_w - pad_w + j*dilation_w + dx
// (the integer part plus the offset, added in float); a point with y <= -1, y >= H, x <= -1 or
// x >= W (or not a number) gives 0; otherwise the four neighbours are blended with the weights
// (1-ly)(1-lx), (1-ly)lx, ly(1-lx), ly*lx, neighbours outside the input counting as 0.
#include <ATen/Dispatch.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>

#include "deform_sample.h"

#define LWDVC_CONCAT_INNER(a, b) a##_##b
#define LWDVC_CONCAT(a, b) LWDVC_CONCAT_INNER(a, b)

namespace lwdvc {
namespace {

// Output pixels sampled together: each (tap, offset group) pass over a block reuses the block's
// column rows and input neighbourhood from L1.
constexpr int64_t kBlock = 32;

// Corner weights and top-left corner pixels of one (tap, offset group) for `count` <= kBlock
// points whose positions are in scratch.y / scratch.x: weight[k * kBlock + p] for corners k =
// top-left, top-right, bottom-left, bottom-right; corner[p] indexes the bordered image's pixels.
void locate_corners(const DeformSampleJob& job, int64_t count, DeformScratch& scratch) {
  using Vec = at::vec::Vectorized<float>;
  using IVec = at::vec::Vectorized<int32_t>;
  static_assert(Vec::size() == IVec::size());
  const int64_t wo_count = count, stride = kBlock;
  const Vec minus_one(-1.0f), one(1.0f), h_limit(static_cast<float>(job.height)),
      w_limit(static_cast<float>(job.width));
  const IVec border(1), row_pixels(static_cast<int32_t>(job.width + 2));
  float* weight = scratch.weight.data();
  for (int64_t wo = 0; wo < wo_count; wo += Vec::size()) {
    const auto n = static_cast<int>(std::min<int64_t>(Vec::size(), wo_count - wo));
    Vec y = Vec::loadu(scratch.y.data() + wo, n), x = Vec::loadu(scratch.x.data() + wo, n);
    const Vec inside = (y > minus_one) & (y < h_limit) & (x > minus_one) & (x < w_limit);
    y = Vec::blendv(h_limit, y, inside);  // outside: row H, column -1 (all four corners are border)
    x = Vec::blendv(minus_one, x, inside);
    const Vec y_low = y.floor(), x_low = x.floor();
    const Vec ly = y - y_low, lx = x - x_low, hy = one - ly, hx = one - lx;
    (hy * hx).store(weight + wo, n);
    (hy * lx).store(weight + stride + wo, n);
    (ly * hx).store(weight + 2 * stride + wo, n);
    (ly * lx).store(weight + 3 * stride + wo, n);
    const IVec pixel = (at::vec::convert_to_int_of_same_size(y_low) + border) * row_pixels +
                       at::vec::convert_to_int_of_same_size(x_low) + border;
    pixel.store(scratch.corner.data() + wo, n);
  }
}

// scratch.y / scratch.x = the sampling positions of tap (y_base, x_base) for `count` points of a
// row, dy and dx read with stride `step` (any offset layout, any dtype).
template <typename scalar_t>
void load_positions(const scalar_t* dy, const scalar_t* dx, int64_t step, int64_t y_base, int64_t x_base,
                    int64_t x_step, int64_t count, DeformScratch& scratch) {
  float* __restrict__ ys = scratch.y.data();
  float* __restrict__ xs = scratch.x.data();
  for (int64_t wo = 0; wo < count; ++wo) {
    // The integer part is exact in float; the offset is added in float, as torchvision does.
    ys[wo] = static_cast<float>(y_base) + static_cast<float>(dy[wo * step]);
    xs[wo] = static_cast<float>(x_base + wo * x_step) + static_cast<float>(dx[wo * step]);
  }
}

using FVec = at::vec::Vectorized<float>;

// One vector's worth of the blend: dst[c] = w0*p0[c] + w1*p1[c] + w2*p2[c] + w3*p3[c] for
// c < n <= FVec::size(), in float.
inline void blend_chunk(const float* p0, const float* p1, const float* p2, const float* p3, const FVec& w0,
                        const FVec& w1, const FVec& w2, const FVec& w3, float* dst, int n) {
  FVec r = FVec::loadu(p0, n) * w0;
  r = at::vec::fmadd(FVec::loadu(p1, n), w1, r);
  r = at::vec::fmadd(FVec::loadu(p2, n), w2, r);
  r = at::vec::fmadd(FVec::loadu(p3, n), w3, r);
  r.store(dst, n);
}

// bfloat16: widened to float, blended, rounded once.
inline FVec widen(const c10::BFloat16* p, int n) {
  return std::get<0>(at::vec::convert_to_float<c10::BFloat16>(at::vec::Vectorized<c10::BFloat16>::loadu(p, n)));
}

inline void blend_chunk(const c10::BFloat16* p0, const c10::BFloat16* p1, const c10::BFloat16* p2,
                        const c10::BFloat16* p3, const FVec& w0, const FVec& w1, const FVec& w2, const FVec& w3,
                        c10::BFloat16* dst, int n) {
  FVec r = widen(p0, n) * w0;
  r = at::vec::fmadd(widen(p1, n), w1, r);
  r = at::vec::fmadd(widen(p2, n), w2, r);
  r = at::vec::fmadd(widen(p3, n), w3, r);
  at::vec::convert_from_float<c10::BFloat16>(r, r).store(dst, n);
}

// Blends one channel run for the `count` points located in scratch, into column rows
// dst + p * col_ld. Vector chunks outside, points inside: short runs (a few channels per offset
// group) become one straight-line chunk per point.
template <typename scalar_t>
void blend_run(const scalar_t* image, const DeformScratch& scratch, int64_t count, int64_t pixel,
               int64_t row_stride, const ChannelRun& run, scalar_t* dst, int64_t col_ld) {
  const float* weight = scratch.weight.data();
  const int32_t* corner = scratch.corner.data();
  for (int64_t c = 0; c < run.length; c += FVec::size()) {
    const auto n = static_cast<int>(std::min<int64_t>(FVec::size(), run.length - c));
    for (int64_t p = 0; p < count; ++p) {
      const scalar_t* top = image + static_cast<int64_t>(corner[p]) * pixel + run.src + c;
      blend_chunk(top, top + pixel, top + row_stride, top + row_stride + pixel, FVec(weight[p]),
                  FVec(weight[kBlock + p]), FVec(weight[2 * kBlock + p]), FVec(weight[3 * kBlock + p]),
                  dst + p * col_ld + c, n);
    }
  }
}

template <typename scalar_t>
void sample_row(const DeformSampleJob& job, int64_t n, int64_t out_row, scalar_t* col, DeformScratch& scratch) {
  const int64_t taps = job.kernel_h * job.kernel_w, pixel = job.channels;
  const int64_t row_stride = (job.width + 2) * pixel;
  scratch.y.resize(kBlock);
  scratch.x.resize(kBlock);
  scratch.weight.resize(4 * kBlock);
  scratch.corner.resize(kBlock);
  const auto* image = static_cast<const scalar_t*>(job.input) + n * (job.height + 3) * row_stride;
  const auto* offsets = static_cast<const scalar_t*>(job.offset) + n * job.offset_stride_n + out_row * job.offset_stride_h;
  for (int64_t wo0 = 0; wo0 < job.out_w; wo0 += kBlock) {
    const int64_t count = std::min(kBlock, job.out_w - wo0);
    const scalar_t* block_offsets = offsets + wo0 * job.offset_stride_w;
    scalar_t* block_col = col + wo0 * job.col_ld;
    for (int64_t i = 0; i < job.kernel_h; ++i) {
      const int64_t y_base = out_row * job.stride_h - job.pad_h + i * job.dilation_h;
      for (int64_t j = 0; j < job.kernel_w; ++j) {
        const int64_t tap = i * job.kernel_w + j;
        const int64_t x_base = wo0 * job.stride_w + j * job.dilation_w - job.pad_w;
        for (size_t g = 0; g < job.runs.size(); ++g) {
          const scalar_t* dy = block_offsets + (static_cast<int64_t>(g) * 2 * taps + 2 * tap) * job.offset_stride_c;
          load_positions(dy, dy + job.offset_stride_c, job.offset_stride_w, y_base, x_base, job.stride_w, count,
                         scratch);
          locate_corners(job, count, scratch);
          for (const ChannelRun& run : job.runs[g]) {
            blend_run(image, scratch, count, pixel, row_stride, run, block_col + run.dst + tap * job.tap_stride,
                      job.col_ld);
          }
        }
      }
    }
  }
}

}  // namespace

void LWDVC_CONCAT(deform_sample_row, CPU_CAPABILITY)(const DeformSampleJob& job, int64_t n, int64_t out_row,
                                                    void* col, DeformScratch& scratch) {
  AT_DISPATCH_SWITCH(job.dtype, "lwdvc_deform_sample",
                     AT_DISPATCH_CASE(at::kFloat, [&] {
                       sample_row<scalar_t>(job, n, out_row, static_cast<scalar_t*>(col), scratch);
                     }) AT_DISPATCH_CASE(at::kBFloat16, [&] {
                       sample_row<scalar_t>(job, n, out_row, static_cast<scalar_t*>(col), scratch);
                     }));
}

}  // namespace lwdvc
