// CPU kernels of masked_weight and masked_weight_backward.
//
// Both are "multiply every element by a per-channel factor": the factor is the mask (forward)
// or the gradient-decay scale mask + beta * (1 - mask) (backward). One pass over the tensor, no
// full-size temporaries, vectorised with at::vec and parallel with at::parallel_for.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/native/cpu/Loops.h>
#include <torch/library.h>

#include <vector>

#include "../common/channel_view.h"
#include "../common/checks.h"
#include "../common/masked_weight.h"

namespace lwdvc {
namespace {

constexpr int64_t kGrainElements = 32768;  // elements per parallel task (as ATen's GRAIN_SIZE)
constexpr int64_t kShortRow = 64;          // rows shorter than this use a repeated pattern row

// out = x * factor[channel] for a contiguous x viewed as [outer, channels, inner].
template <typename scalar_t>
void scale_channels_contiguous(const scalar_t* x, scalar_t* out, const std::vector<scalar_t>& factor,
                               const ChannelView& v) {
  using Vec = at::vec::Vectorized<scalar_t>;
  if (v.inner >= kShortRow) {
    // Long rows (e.g. conv weights masked along dim 0): one scalar factor per row.
    const int64_t rows = v.outer * v.channels;
    const int64_t grain = std::max<int64_t>(1, kGrainElements / v.inner);
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const Vec f(factor[r % v.channels]);
        at::vec::map([f](Vec a) { return a * f; }, out + r * v.inner, x + r * v.inner, v.inner);
      }
    });
    return;
  }
  // Short rows (e.g. ConvTranspose weights masked along dim 1, Linear along dim 1): expand the
  // factors once into a pattern of length channels * inner and multiply row blocks by it.
  const int64_t block = v.channels * v.inner;
  std::vector<scalar_t> pattern(block);
  for (int64_t c = 0; c < v.channels; ++c) {
    std::fill_n(pattern.data() + c * v.inner, v.inner, factor[c]);
  }
  const int64_t grain = std::max<int64_t>(1, kGrainElements / block);
  at::parallel_for(0, v.outer, grain, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      at::vec::map2([](Vec a, Vec b) { return a * b; }, out + o * block, x + o * block,
                    pattern.data(), block);
    }
  });
}

// out = x * factor[channel] for any strides, through TensorIterator (mask broadcast by stride 0).
template <typename scalar_t>
void scale_channels_strided(const at::Tensor& x, at::Tensor& out, const std::vector<scalar_t>& factor,
                            int64_t dim) {
  auto factor_tensor = at::from_blob(const_cast<scalar_t*>(factor.data()),
                                     {static_cast<int64_t>(factor.size())}, x.options());
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

// Per-channel factors in the tensor's dtype: mask (forward) or the gradient-decay scale.
template <typename scalar_t>
std::vector<scalar_t> channel_factors(const at::Tensor& mask, double beta, bool gradient_decay) {
  const auto m = mask.to(at::kFloat).contiguous();
  const float* mp = m.data_ptr<float>();
  std::vector<scalar_t> factor(m.numel());
  for (int64_t c = 0; c < m.numel(); ++c) {
    const float f = gradient_decay ? gradient_decay_scale(mp[c], static_cast<float>(beta)) : mp[c];
    factor[c] = static_cast<scalar_t>(f);
  }
  return factor;
}

at::Tensor scale_channels(const at::Tensor& x, const at::Tensor& mask, double beta, int64_t dim,
                          bool gradient_decay) {
  const bool contiguous = x.is_contiguous();
  at::Tensor out = contiguous ? at::empty_like(x, at::MemoryFormat::Contiguous) : at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lwdvc_masked_weight", [&] {
    const auto factor = channel_factors<scalar_t>(mask, beta, gradient_decay);
    if (contiguous) {
      scale_channels_contiguous<scalar_t>(x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(),
                                          factor, channel_view(x, dim));
    } else {
      scale_channels_strided<scalar_t>(x, out, factor, dim);
    }
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
