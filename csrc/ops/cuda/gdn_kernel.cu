// CUDA kernel of gdn: fused GDN / IGDN, one thread per pixel, every channel of the pixel in one
// pass (x^2, the gamma matrix-vector product, sqrt and the multiply/divide). gamma is read
// through the read-only cache; every thread of a warp reads the same gamma entry at a time.
// Untuned: written for correctness on any channel count (GPU speed is not measured).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../common/preconditions.h"
#include "../common/gdn.h"

namespace lwdvc {
namespace {

constexpr int kThreads = 128;

// x, out: contiguous NCHW [batch, channels, pixels]; beta [C], gamma [C, C] in acc_t.
template <typename scalar_t, typename acc_t>
__global__ void gdn_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ out,
                           const acc_t* __restrict__ beta, const acc_t* __restrict__ gamma, int64_t batch,
                           int64_t channels, int64_t pixels, bool inverse) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= batch * pixels) return;
  const int64_t n = index / pixels, p = index % pixels;
  const scalar_t* xp = x + n * channels * pixels + p;
  scalar_t* op = out + n * channels * pixels + p;
  for (int64_t i = 0; i < channels; ++i) {
    acc_t norm = __ldg(beta + i);
    const acc_t* row = gamma + i * channels;
    for (int64_t j = 0; j < channels; ++j) {
      const acc_t v = static_cast<acc_t>(xp[j * pixels]);
      norm += __ldg(row + j) * v * v;
    }
    op[i * pixels] = static_cast<scalar_t>(gdn_output(static_cast<acc_t>(xp[i * pixels]), norm, inverse));
  }
}

at::Tensor gdn_cuda(const at::Tensor& input, const at::Tensor& beta, const at::Tensor& gamma, bool inverse) {
  require_gdn(input, beta, gamma);
  const c10::cuda::CUDAGuard guard(input.device());
  const auto format = input.suggest_memory_format();
  const auto x = input.contiguous();
  auto out = at::empty_like(x, at::MemoryFormat::Contiguous);
  const int64_t batch = x.size(0), channels = x.size(1), pixels = x.size(2) * x.size(3);
  const auto acc_type = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const auto beta_acc = beta.to(acc_type).contiguous();
  const auto gamma_acc = gamma.to(acc_type).contiguous();
  const int64_t total = batch * pixels;
  const auto blocks = static_cast<unsigned>((total + kThreads - 1) / kThreads);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lwdvc_gdn_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    gdn_kernel<scalar_t, acc_t><<<blocks, kThreads, 0, stream>>>(
        x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), beta_acc.const_data_ptr<acc_t>(),
        gamma_acc.const_data_ptr<acc_t>(), batch, channels, pixels, inverse);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out.contiguous(format);
}

}  // namespace

TORCH_LIBRARY_IMPL(lwdvc, CUDA, m) { m.impl("gdn", &gdn_cuda); }

}  // namespace lwdvc
