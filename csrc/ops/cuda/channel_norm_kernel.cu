// CUDA kernel of channel_norm: one block per channel, block-wide sum of squares.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../common/channel_view.h"
#include "../common/preconditions.h"

namespace lwdvc {
namespace {

constexpr int kThreads = 256;

// sumsq[c] += sum_{o, i} x[o, c, i]^2 for a contiguous x viewed as [outer, channels, inner], in
// double as on CPU (float32 squares overflow above 1.8e19, float32 sums stop growing at 2^24).
template <typename scalar_t>
__global__ void channel_sumsq_kernel(const scalar_t* __restrict__ x, double* __restrict__ sumsq,
                                     int64_t outer, int64_t channels, int64_t inner) {
  __shared__ double partial[kThreads];
  const int64_t c = blockIdx.x;
  const int64_t per_channel = outer * inner;
  double acc = 0.0;
  for (int64_t j = threadIdx.x; j < per_channel; j += blockDim.x) {
    const int64_t o = j / inner;
    const double value = static_cast<double>(x[(o * channels + c) * inner + (j - o * inner)]);
    acc += value * value;
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) sumsq[c] += partial[0];
}

at::Tensor channel_norm_cuda(at::TensorList weights, at::IntArrayRef dims) {
  const auto wrapped = require_coupled_channels("channel_norm", weights, dims);
  const c10::cuda::CUDAGuard guard(weights[0].device());
  const int64_t channels = weights[0].size(wrapped[0]);
  auto sumsq = at::zeros({channels}, weights[0].options().dtype(at::kDouble));
  auto stream = c10::cuda::getCurrentCUDAStream();
  for (size_t k = 0; k < weights.size(); ++k) {
    const auto w = weights[k].contiguous();
    const auto v = channel_view(w, wrapped[k]);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, w.scalar_type(), "lwdvc_channel_norm_cuda", [&] {
      channel_sumsq_kernel<scalar_t><<<static_cast<unsigned>(channels), kThreads, 0, stream>>>(
          w.const_data_ptr<scalar_t>(), sumsq.mutable_data_ptr<double>(), v.outer, v.channels, v.inner);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return sumsq.sqrt_().to(at::kFloat);
}

}  // namespace

TORCH_LIBRARY_IMPL(lwdvc, CUDA, m) { m.impl("channel_norm", &channel_norm_cuda); }

}  // namespace lwdvc
