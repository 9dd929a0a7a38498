// CUDA kernels of masked_weight(s) and masked_weight(s)_backward: out = x * factor[channel].
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <vector>

#include "../common/channel_view.h"
#include "../common/masked_weight.h"
#include "../common/masked_weight_ops.h"

namespace lwdvc {
namespace {

constexpr int kThreads = 256;

// factor[c] = mask[c] (forward) or gradient_decay_scale(mask[c], beta) (backward), rounded to
// scalar_t like the reference, then applied in factor_t<scalar_t>: double for double tensors,
// float for the others.
template <typename scalar_t>
__global__ void scale_channels_kernel(const scalar_t* __restrict__ x, const factor_t<scalar_t>* __restrict__ mask,
                                      scalar_t* __restrict__ out, int64_t numel, int64_t inner,
                                      int64_t channels, factor_t<scalar_t> beta, bool gradient_decay) {
  using factor_type = factor_t<scalar_t>;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < numel; i += stride) {
    const factor_type m = mask[channel_of(i, inner, channels)];
    const factor_type f = gradient_decay ? gradient_decay_scale(m, beta) : m;
    const factor_type rounded = static_cast<factor_type>(static_cast<scalar_t>(f));
    out[i] = static_cast<scalar_t>(static_cast<factor_type>(x[i]) * rounded);
  }
}

at::Tensor scale_channels_cuda(const at::Tensor& input, const at::Tensor& mask, double beta, int64_t dim,
                               bool gradient_decay) {
  const c10::cuda::CUDAGuard guard(input.device());
  const auto x = input.contiguous();  // strided inputs are densified once
  auto out = at::empty_like(x, at::MemoryFormat::Contiguous);
  const auto v = channel_view(x, dim);
  const int64_t numel = x.numel();
  const int blocks = static_cast<int>(std::min<int64_t>((numel + kThreads - 1) / kThreads, 65535));
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lwdvc_masked_weight_cuda", [&] {
    using factor_type = factor_t<scalar_t>;
    const auto m = mask.to(c10::CppTypeToScalarType<factor_type>::value).contiguous();
    scale_channels_kernel<scalar_t><<<blocks, kThreads, 0, stream>>>(
        x.const_data_ptr<scalar_t>(), m.const_data_ptr<factor_type>(), out.mutable_data_ptr<scalar_t>(), numel,
        v.inner, v.channels, static_cast<factor_type>(beta), gradient_decay);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

// Every op, single tensor or list, launches the kernel once per tensor, in order on the current
// stream: correct, but a list pays one launch per tensor (one multi-tensor launch would not).
std::vector<at::Tensor> scale_channels_list_cuda(at::TensorList xs, at::TensorList masks, double beta,
                                                 const std::vector<int64_t>& dims, bool gradient_decay) {
  std::vector<at::Tensor> outs;
  outs.reserve(xs.size());
  for (size_t k = 0; k < xs.size(); ++k) {
    outs.push_back(scale_channels_cuda(xs[k], masks[k], beta, dims[k], gradient_decay));
  }
  return outs;
}

}  // namespace

TORCH_LIBRARY_IMPL(lwdvc, CUDA, m) { LWDVC_REGISTER_MASKED_WEIGHT_OPS(m, MaskedWeightOps<&scale_channels_list_cuda>); }

}  // namespace lwdvc
