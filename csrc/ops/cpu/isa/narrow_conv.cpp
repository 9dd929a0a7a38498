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

// kPixels consecutive output pixels (ow0 ...) of output row oh of one image whose kernel
// windows lie inside the input columns: no per-pixel checks; whole 16-channel blocks with plain
// loads, the channel tail after them with masked loads (a mask chosen per block in the loop
// costs 1.3-2x here).
template <int kOut, int kPixels>
inline void interior_block(const NarrowConvArgs& a, const float* image, float* out_row, const float* residual_row,
                           int64_t oh, int64_t ow0, __mmask16 tail) {
  __m512 acc[kPixels][kOut];
  LWDVC_UNROLL
  for (int p = 0; p < kPixels; ++p)
    LWDVC_UNROLL
    for (int o = 0; o < kOut; ++o) acc[p][o] = _mm512_setzero_ps();
  const int64_t full_blocks = a.channels / kNarrowConvLanes;
  const int64_t pixel_step = a.stride_w * a.channels;
  for (int64_t kh = 0; kh < a.kernel_h; ++kh) {
    const int64_t ih = oh * a.stride_h - a.pad_h + kh;
    if (ih < 0 || ih >= a.height) continue;
    const float* row = image + (ih * a.width + ow0 * a.stride_w - a.pad_w) * a.channels;
    for (int64_t kw = 0; kw < a.kernel_w; ++kw) {
      const float* first = row + kw * a.channels;
      const float* weight = a.packed + (kh * a.kernel_w + kw) * kOut * a.padded_channels;
      const float* px[kPixels];
      LWDVC_UNROLL
      for (int p = 0; p < kPixels; ++p) px[p] = first + p * pixel_step;
      int64_t c = 0;
      for (int64_t b = 0; b < full_blocks; ++b, c += kNarrowConvLanes) {
        __m512 w[kOut];
        LWDVC_UNROLL
        for (int o = 0; o < kOut; ++o) w[o] = _mm512_loadu_ps(weight + o * a.padded_channels + c);
        LWDVC_UNROLL
        for (int p = 0; p < kPixels; ++p) {
          const __m512 x = _mm512_loadu_ps(px[p] + c);
          LWDVC_UNROLL
          for (int o = 0; o < kOut; ++o) acc[p][o] = _mm512_fmadd_ps(x, w[o], acc[p][o]);
        }
      }
      if (tail != 0) {
        __m512 w[kOut];
        LWDVC_UNROLL
        for (int o = 0; o < kOut; ++o) w[o] = _mm512_loadu_ps(weight + o * a.padded_channels + c);
        LWDVC_UNROLL
        for (int p = 0; p < kPixels; ++p) {
          const __m512 x = _mm512_maskz_loadu_ps(tail, px[p] + c);
          LWDVC_UNROLL
          for (int o = 0; o < kOut; ++o) acc[p][o] = _mm512_fmadd_ps(x, w[o], acc[p][o]);
        }
      }
    }
  }
  store_block<kOut, kPixels>(a, acc, out_row, residual_row, ow0);
}

// kPixels consecutive output pixels of which some kernel windows cross the left or right
// border: taps outside the input read as zero.
template <int kOut, int kPixels>
inline void border_block(const NarrowConvArgs& a, const float* image, float* out_row, const float* residual_row,
                         int64_t oh, int64_t ow0, __mmask16 tail) {
  __m512 acc[kPixels][kOut];
  LWDVC_UNROLL
  for (int p = 0; p < kPixels; ++p)
    LWDVC_UNROLL
    for (int o = 0; o < kOut; ++o) acc[p][o] = _mm512_setzero_ps();
  const int64_t blocks = (a.channels + kNarrowConvLanes - 1) / kNarrowConvLanes;
  const int64_t full_blocks = a.channels / kNarrowConvLanes;
  for (int64_t kh = 0; kh < a.kernel_h; ++kh) {
    const int64_t ih = oh * a.stride_h - a.pad_h + kh;
    if (ih < 0 || ih >= a.height) continue;
    for (int64_t kw = 0; kw < a.kernel_w; ++kw) {
      const float* weight = a.packed + (kh * a.kernel_w + kw) * kOut * a.padded_channels;
      LWDVC_UNROLL
      for (int p = 0; p < kPixels; ++p) {
        const int64_t iw = (ow0 + p) * a.stride_w - a.pad_w + kw;
        if (iw < 0 || iw >= a.width) continue;
        const float* pixel = image + (ih * a.width + iw) * a.channels;
        for (int64_t b = 0; b < blocks; ++b) {
          const int64_t c = b * kNarrowConvLanes;
          const __mmask16 mask = b < full_blocks ? static_cast<__mmask16>(0xFFFF) : tail;
          const __m512 x = _mm512_maskz_loadu_ps(mask, pixel + c);
          LWDVC_UNROLL
          for (int o = 0; o < kOut; ++o) {
            acc[p][o] = _mm512_fmadd_ps(x, _mm512_loadu_ps(weight + o * a.padded_channels + c), acc[p][o]);
          }
        }
      }
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
        interior_block<kOut, kPixels>(a, image, out_row, residual_row, oh, ow, tail);
      } else {
        border_block<kOut, kPixels>(a, image, out_row, residual_row, oh, ow, tail);
      }
    }
    for (; ow < a.out_w; ++ow) border_block<kOut, 1>(a, image, out_row, residual_row, oh, ow, tail);
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
