// CUDA kernel of conv2d_epilogue: implicit-GEMM convolution with the epilogue fused.
//
// GEMM view per (image, group): out[oc, p] = sum_k W[oc, k] * X[k, p] with k = (ci, kh, kw) and
// p an output pixel; X is never materialised (im2col is done while loading the shared tile).
// A block computes a kTileM (output channels) x kTileN (pixels) tile, 4 x 4 outputs per thread,
// in kTileK slices of the reduction. The epilogue adds the bias, applies the activation, adds
// the residual and stores straight into the PixelShuffle layout. Any channel count, stride,
// padding, dilation and groups. Untuned (no tensor cores): GPU speed is not measured.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../common/conv2d_epilogue.h"
#include "../common/preconditions.h"

namespace lwdvc {
namespace {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16, kThreads = 256;

struct ConvGeometry {
  int64_t in_channels_per_group, height, width;
  int64_t out_channels_per_group, groups, kernel_h, kernel_w, out_h, out_w;
  int64_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, upscale;
  Activation activation;
  double negative_slope;
};

// x [N, Cin, H, W], w [Cout, Cin/groups, kh, kw], residual/out [N, Cout/r^2, Ho*r, Wo*r]: contiguous.
template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kThreads) conv2d_epilogue_kernel(
    const scalar_t* __restrict__ x, const scalar_t* __restrict__ w, const scalar_t* __restrict__ bias,
    const scalar_t* __restrict__ residual, scalar_t* __restrict__ out, ConvGeometry g) {
  __shared__ acc_t w_tile[kTileK][kTileM];
  __shared__ acc_t x_tile[kTileK][kTileN];
  const int64_t pixels = g.out_h * g.out_w;
  const int64_t reduction = g.in_channels_per_group * g.kernel_h * g.kernel_w;
  const int64_t image = blockIdx.z / g.groups, group = blockIdx.z % g.groups;
  const int64_t oc0 = static_cast<int64_t>(blockIdx.y) * kTileM;  // within the group
  const int64_t p0 = static_cast<int64_t>(blockIdx.x) * kTileN;
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const scalar_t* x_image = x + (image * g.groups + group) * g.in_channels_per_group * g.height * g.width;
  const scalar_t* w_group = w + group * g.out_channels_per_group * reduction;

  acc_t acc[4][4] = {};
  for (int64_t k0 = 0; k0 < reduction; k0 += kTileK) {
    for (int e = tid; e < kTileK * kTileM; e += kThreads) {
      const int k = e / kTileM, m = e % kTileM;
      const int64_t oc = oc0 + m, kk = k0 + k;
      w_tile[k][m] = (oc < g.out_channels_per_group && kk < reduction)
                         ? static_cast<acc_t>(w_group[oc * reduction + kk]) : acc_t(0);
    }
    for (int e = tid; e < kTileK * kTileN; e += kThreads) {
      const int k = e / kTileN, n = e % kTileN;
      const int64_t p = p0 + n, kk = k0 + k;
      acc_t value = 0;
      if (p < pixels && kk < reduction) {
        const int64_t ci = kk / (g.kernel_h * g.kernel_w);
        const int64_t kh = (kk / g.kernel_w) % g.kernel_h, kw = kk % g.kernel_w;
        const int64_t hi = (p / g.out_w) * g.stride_h - g.pad_h + kh * g.dilation_h;
        const int64_t wi = (p % g.out_w) * g.stride_w - g.pad_w + kw * g.dilation_w;
        if (hi >= 0 && hi < g.height && wi >= 0 && wi < g.width) {
          value = static_cast<acc_t>(x_image[(ci * g.height + hi) * g.width + wi]);
        }
      }
      x_tile[k][n] = value;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kTileK; ++k) {
      acc_t a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = w_tile[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = x_tile[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }

  const int64_t r = g.upscale;
  const int64_t out_channels = g.out_channels_per_group * g.groups / (r * r);
  const int64_t out_h = g.out_h * r, out_w = g.out_w * r;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t oc_local = oc0 + ty + 16 * i;
    if (oc_local >= g.out_channels_per_group) continue;
    const int64_t oc = group * g.out_channels_per_group + oc_local;
    const acc_t b = bias != nullptr ? static_cast<acc_t>(bias[oc]) : acc_t(0);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t p = p0 + tx + 16 * j;
      if (p >= pixels) continue;
      const auto dst = pixel_shuffle_index(oc, p / g.out_w, p % g.out_w, r);
      const int64_t o = ((image * out_channels + dst.channel) * out_h + dst.row) * out_w + dst.col;
      acc_t v = apply_activation<acc_t>(acc[i][j] + b, g.activation, static_cast<acc_t>(g.negative_slope));
      if (residual != nullptr) v += static_cast<acc_t>(residual[o]);
      out[o] = static_cast<scalar_t>(v);
    }
  }
}

at::Tensor conv2d_epilogue_cuda(const at::Tensor& input, const at::Tensor& weight,
                                const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& residual,
                                at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                                int64_t groups, c10::string_view activation, double negative_slope,
                                int64_t upscale) {
  const auto s = require_conv2d_epilogue("conv2d_epilogue", input, weight, bias, residual, stride, padding,
                                         dilation, groups, upscale);
  const c10::cuda::CUDAGuard guard(input.device());
  const auto format = input.suggest_memory_format();
  const auto x = input.contiguous();
  const auto w = weight.contiguous();
  const auto b = bias.has_value() ? bias->contiguous() : at::Tensor();
  const auto res = residual.has_value() ? residual->contiguous() : at::Tensor();
  const int64_t r = upscale;
  auto out = at::empty({s.batch, s.out_channels / (r * r), s.out_h * r, s.out_w * r}, x.options());
  ConvGeometry g{s.in_channels / groups, s.height, s.width, s.out_channels / groups, groups, s.kernel_h,
                 s.kernel_w, s.out_h, s.out_w, stride[0], stride[1], padding[0], padding[1], dilation[0],
                 dilation[1], upscale, parse_activation("conv2d_epilogue", activation),
                 negative_slope};
  const dim3 grid(static_cast<unsigned>((s.out_h * s.out_w + kTileN - 1) / kTileN),
                  static_cast<unsigned>((g.out_channels_per_group + kTileM - 1) / kTileM),
                  static_cast<unsigned>(s.batch * groups));
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lwdvc_conv2d_epilogue_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    conv2d_epilogue_kernel<scalar_t, acc_t><<<grid, kThreads, 0, stream>>>(
        x.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(),
        b.defined() ? b.const_data_ptr<scalar_t>() : nullptr, res.defined() ? res.const_data_ptr<scalar_t>() : nullptr,
        out.mutable_data_ptr<scalar_t>(), g);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out.contiguous(format);
}

}  // namespace

TORCH_LIBRARY_IMPL(lwdvc, CUDA, m) { m.impl("conv2d_epilogue", &conv2d_epilogue_cuda); }

}  // namespace lwdvc
