// CPU kernels of masked_weight and masked_weight_backward.
//
// Both are "multiply every element by a per-channel factor": the factor is the mask (forward)
// or the gradient-decay scale mask + beta * (1 - mask) (backward). One pass over the tensor, no
// full-size temporaries, parallel with at::parallel_for; contiguous tensors use the per-ISA
// vectorised loop of isa/scale_channels.cpp, strided ones TensorIterator.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/TensorIterator.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/native/cpu/Loops.h>
#include <torch/library.h>

#include <vector>

#include "../common/channel_view.h"
#include "../common/checks.h"
#include "../common/masked_weight.h"
#include "isa/scale_channels.h"

namespace lwdvc {
namespace {

// out = x * factor[channel] for any strides, through TensorIterator (mask broadcast by stride 0).
template <typename scalar_t>
void scale_channels_strided(const at::Tensor& x, at::Tensor& out, const std::vector<float>& factor_f,
                            int64_t dim) {
  std::vector<scalar_t> factor(factor_f.begin(), factor_f.end());
  auto factor_tensor = at::from_blob(factor.data(), {static_cast<int64_t>(factor.size())}, x.options());
  std::vector<int64_t> strides(x.dim(), 0);
  strides[dim] = 1;
  auto broadcast = factor_tensor.as_strided(x.sizes(), strides);
  auto iter = at::TensorIteratorConfig()
                  .add_output(out)
                  .add_const_input(x)
                  .add_const_input(broadcast)
                  .build();
  using Vec = at::vec::Vectorized<scalar_t>;
  at::native::cpu_kernel_vec(
      iter, [](scalar_t a, scalar_t b) -> scalar_t { return a * b; },
      [](Vec a, Vec b) { return a * b; });
}

// Per-channel factors: mask (forward) or the gradient-decay scale (backward).
std::vector<float> channel_factors(const at::Tensor& mask, double beta, bool gradient_decay) {
  const auto m = mask.to(at::kFloat).contiguous();
  const float* mp = m.const_data_ptr<float>();
  std::vector<float> factor(m.numel());
  for (int64_t c = 0; c < m.numel(); ++c) {
    factor[c] = gradient_decay ? gradient_decay_scale(mp[c], static_cast<float>(beta)) : mp[c];
  }
  return factor;
}

at::Tensor scale_channels(const at::Tensor& x, const at::Tensor& mask, double beta, int64_t dim,
                          bool gradient_decay) {
  const bool contiguous = x.is_contiguous();
  at::Tensor out = contiguous ? at::empty_like(x, at::MemoryFormat::Contiguous) : at::empty_like(x);
  const auto factor = channel_factors(mask, beta, gradient_decay);
  if (contiguous) {
    static const ScaleChannelsFn scale_contiguous = scale_channels_contiguous_for_this_cpu();
    scale_contiguous(x, out, factor, channel_view(x, dim));
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lwdvc_masked_weight", [&] {
    scale_channels_strided<scalar_t>(x, out, factor, dim);
  });
  return out;
}

at::Tensor masked_weight_cpu(const at::Tensor& weight, const at::Tensor& mask, double beta, int64_t dim) {
  const int64_t d = check_masked_weight_args("masked_weight", "weight", weight, mask, beta, dim);
  return scale_channels(weight, mask, beta, d, /*gradient_decay=*/false);
}

at::Tensor masked_weight_backward_cpu(const at::Tensor& grad, const at::Tensor& mask, double beta,
                                      int64_t dim) {
  const int64_t d = check_masked_weight_args("masked_weight_backward", "grad", grad, mask, beta, dim);
  return scale_channels(grad, mask, beta, d, /*gradient_decay=*/true);
}

}  // namespace

TORCH_LIBRARY_IMPL(lwdvc, CPU, m) {
  m.impl("masked_weight", &masked_weight_cpu);
  m.impl("masked_weight_backward", &masked_weight_backward_cpu);
}

}  // namespace lwdvc
