// The narrow direct convolution (see narrow_conv.h); a body only in the AVX512 build.
#include "narrow_conv.h"

#if defined(CPU_CAPABILITY_AVX512)
#include <immintrin.h>

#include "../../common/conv2d_epilogue.h"

// Fully unrolled register-block loops: GCC otherwise keeps the accumulators in memory.
#define LWDVC_UNROLL _Pragma("GCC unroll 16")

namespace lwdvc {
namespace {

// Output pixels computed together: kPixels * kOut accumulators plus kOut weight vectors and one
// input vector stay within the 32 zmm registers.
template <int kOut>
constexpr int pixels_per_block() {
  return kOut <= 4 ? 6 : (kOut <= 6 ? 4 : 3);
}

// Stores act(sum of lanes + bias) (+ residual) of kPixels output pixels.
template <int kOut, int kPixels>
inline void store_block(const NarrowConvArgs& a, const __m512 (&acc)[kPixels][kOut], float* out_row,
                        const float* residual_row, int64_t ow0) {
  const auto act = static_cast<Activation>(a.activation);
  LWDVC_UNROLL
  for (int p = 0; p < kPixels; ++p) {
    float* dst = out_row + (ow0 + p) * kOut;
    const float* res = residual_row == nullptr ? nullptr : residual_row + (ow0 + p) * kOut;
    LWDVC_UNROLL
    for (int o = 0; o < kOut; ++o) {
      float v = _mm512_reduce_add_ps(acc[p][o]) + (a.bias == nullptr ? 0.f : a.bias[o]);
      v = apply_activation<float>(v, act, a.negative_slope);
      dst[o] = res == nullptr ? v : v + res[o];
    }
  }
}

constexpr __mmask16 kAllLanes = static_cast<__mmask16>(0xFFFF);

// acc[p][o] += x[p][c .. c+15] * w[o][c .. c+15] for one block of 16 input channels of one
// kernel tap; `lanes` masks the loads of the input-channel tail (kAllLanes: plain loads).
template <int kOut, int kPixels>
inline void accumulate_channel_block(__m512 (&acc)[kPixels][kOut], const float* const (&pixel)[kPixels],
                                     const float* weight, int64_t padded_channels, int64_t c, __mmask16 lanes) {
  __m512 w[kOut];
  LWDVC_UNROLL
  for (int o = 0; o < kOut; ++o) w[o] = _mm512_loadu_ps(weight + o * padded_channels + c);
  LWDVC_UNROLL
  for (int p = 0; p < kPixels; ++p) {
    const __m512 x = lanes == kAllLanes ? _mm512_loadu_ps(pixel[p] + c) : _mm512_maskz_loadu_ps(lanes, pixel[p] + c);
    LWDVC_UNROLL
    for (int o = 0; o < kOut; ++o) acc[p][o] = _mm512_fmadd_ps(x, w[o], acc[p][o]);
  }
}

// kPixels consecutive output pixels (ow0 ...) of output row oh of one image. kInterior: every
// kernel window lies inside the input columns (no per-pixel checks); otherwise taps outside
// the input read a row of zeros. Whole 16-channel blocks use plain loads, the channel tail one
// masked block after them (a mask chosen per block inside the loop costs 1.3-2x here).
template <int kOut, int kPixels, bool kInterior>
inline void pixel_block(const NarrowConvArgs& a, const float* image, float* out_row, const float* residual_row,
                        int64_t oh, int64_t ow0, __mmask16 tail) {
  __m512 acc[kPixels][kOut];
  LWDVC_UNROLL
  for (int p = 0; p < kPixels; ++p)
    LWDVC_UNROLL
    for (int o = 0; o < kOut; ++o) acc[p][o] = _mm512_setzero_ps();
  const int64_t full_blocks = a.channels / kNarrowConvLanes;
  for (int64_t kh = 0; kh < a.kernel_h; ++kh) {
    const int64_t ih = oh * a.stride_h - a.pad_h + kh;
    if (ih < 0 || ih >= a.height) continue;
    const float* row = image + ih * a.width * a.channels;
    for (int64_t kw = 0; kw < a.kernel_w; ++kw) {
      const float* weight = a.packed + (kh * a.kernel_w + kw) * kOut * a.padded_channels;
      const float* px[kPixels];
      LWDVC_UNROLL
      for (int p = 0; p < kPixels; ++p) {
        const int64_t iw = (ow0 + p) * a.stride_w - a.pad_w + kw;
        px[p] = (kInterior || (iw >= 0 && iw < a.width)) ? row + iw * a.channels : a.zeros;
      }
      int64_t c = 0;
      for (int64_t b = 0; b < full_blocks; ++b, c += kNarrowConvLanes) {
        accumulate_channel_block<kOut, kPixels>(acc, px, weight, a.padded_channels, c, kAllLanes);
      }
      if (tail != 0) accumulate_channel_block<kOut, kPixels>(acc, px, weight, a.padded_channels, c, tail);
    }
  }
  store_block<kOut, kPixels>(a, acc, out_row, residual_row, ow0);
}

template <int kOut>
void rows(const NarrowConvArgs& a, int64_t row_begin, int64_t row_end) {
  constexpr int kPixels = pixels_per_block<kOut>();
  const int64_t rem = a.channels % kNarrowConvLanes;
  const auto tail = static_cast<__mmask16>(rem == 0 ? 0u : (1u << rem) - 1u);
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t n = row / a.out_h, oh = row % a.out_h;
    const float* image = a.input + n * a.height * a.width * a.channels;
    float* out_row = a.out + row * a.out_w * kOut;
    const float* residual_row = a.residual == nullptr ? nullptr : a.residual + row * a.out_w * kOut;
    int64_t ow = 0;
    for (; ow + kPixels <= a.out_w; ow += kPixels) {
      const bool inside = ow * a.stride_w - a.pad_w >= 0 &&
                          (ow + kPixels - 1) * a.stride_w - a.pad_w + a.kernel_w <= a.width;
      if (inside) {
        pixel_block<kOut, kPixels, true>(a, image, out_row, residual_row, oh, ow, tail);
      } else {
        pixel_block<kOut, kPixels, false>(a, image, out_row, residual_row, oh, ow, tail);
      }
    }
    for (; ow < a.out_w; ++ow) pixel_block<kOut, 1, false>(a, image, out_row, residual_row, oh, ow, tail);
  }
}

}  // namespace

void narrow_conv_rows_AVX512(const NarrowConvArgs& a, int64_t row_begin, int64_t row_end) {
  switch (a.out_channels) {
    case 1: return rows<1>(a, row_begin, row_end);
    case 2: return rows<2>(a, row_begin, row_end);
    case 3: return rows<3>(a, row_begin, row_end);
    case 4: return rows<4>(a, row_begin, row_end);
    case 5: return rows<5>(a, row_begin, row_end);
    case 6: return rows<6>(a, row_begin, row_end);
    case 7: return rows<7>(a, row_begin, row_end);
    case 8: return rows<8>(a, row_begin, row_end);
    default: return;  // callers check out_channels <= kNarrowConvMaxOutChannels
  }
}

}  // namespace lwdvc
#endif  // CPU_CAPABILITY_AVX512
