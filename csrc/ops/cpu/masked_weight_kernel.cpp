// CPU kernels of masked_weight(s) and masked_weight(s)_backward.
//
// All four are "multiply every element by a per-channel factor": the factor is the mask
// (forward) or the gradient-decay scale mask + beta * (1 - mask) (backward). The single-tensor
// ops are the list ops on a list of one. Outputs are allocated up front; contiguous tensors are
// then scaled in ONE parallel region by the per-ISA loop of isa/scale_channels.cpp, the work of
// all of them split into equal parts; strided ones go through TensorIterator. One pass, no
// full-size temporaries. The factor of a double tensor is computed and applied in double, that of
// a float, half or bfloat16 tensor computed in float and rounded to its dtype (factor_t).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/native/cpu/Loops.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../common/channel_view.h"
#include "../common/masked_weight.h"
#include "../common/masked_weight_ops.h"
#include "isa/scale_channels.h"

namespace lwdvc {
namespace {

constexpr int64_t kGrainElements = 32768;  // fewest elements worth a thread (as ATen's GRAIN_SIZE)

// out = x * factor[channel] for any strides, through TensorIterator (mask broadcast by stride 0).
template <typename scalar_t>
void scale_channels_strided(const at::Tensor& x, at::Tensor& out, const std::vector<double>& factors,
                            int64_t dim) {
  std::vector<scalar_t> factor(factors.size());
  std::transform(factors.begin(), factors.end(), factor.begin(), factor_as<scalar_t>);
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

// Per-channel factors of a tensor of dtype `dtype`: mask (forward) or the gradient-decay scale
// (backward), read in place from a mask of any floating or bool dtype and stride. Computed in
// double for a double tensor and in float for every other dtype (held as double: exact).
std::vector<double> channel_factors(const at::Tensor& mask, double beta, bool gradient_decay, at::ScalarType dtype) {
  std::vector<double> factor(mask.numel());
  const int64_t stride = mask.stride(0);
  AT_DISPATCH_FLOATING_TYPES_AND3(at::kHalf, at::kBFloat16, at::kBool, mask.scalar_type(), "lwdvc_mask_factors", [&] {
    const scalar_t* mp = mask.const_data_ptr<scalar_t>();
    auto fill = [&](auto precision) {
      using factor_type = decltype(precision);
      const auto b = static_cast<factor_type>(beta);
      for (size_t c = 0; c < factor.size(); ++c) {
        const auto m = static_cast<factor_type>(mp[static_cast<int64_t>(c) * stride]);
        factor[c] = gradient_decay ? gradient_decay_scale(m, b) : m;
      }
    };
    if (dtype == at::kDouble) {
      fill(double{});
    } else {
      fill(float{});
    }
  });
  return factor;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Scales every job in one parallel region. The jobs' elements, laid end to end, are cut into
// equal parts (at most one per thread, none smaller than kGrainElements); each unit of a job
// goes to the part that holds its first element.
void run_scale_jobs(const std::vector<ScaleJob>& jobs) {
  if (jobs.empty()) return;
  static const ScaleUnitsFn scale_units = scale_units_for_this_cpu();
  std::vector<int64_t> start(jobs.size() + 1, 0);
  for (size_t k = 0; k < jobs.size(); ++k) start[k + 1] = start[k] + jobs[k].numel();
  const int64_t total = start.back();
  const int64_t parts = std::clamp<int64_t>(total / kGrainElements, 1, at::get_num_threads());
  at::parallel_for(0, parts, 1, [&](int64_t part_begin, int64_t part_end) {
    for (int64_t p = part_begin; p < part_end; ++p) {
      const int64_t lo = total * p / parts;
      const int64_t hi = total * (p + 1) / parts;
      // The job holding element lo, then every job that starts before hi.
      size_t k = static_cast<size_t>(std::upper_bound(start.begin(), start.end(), lo) - start.begin()) - 1;
      for (; k < jobs.size() && start[k] < hi; ++k) {
        const int64_t length = jobs[k].unit_length();
        const int64_t first = lo <= start[k] ? 0 : ceil_div(lo - start[k], length);
        const int64_t last = std::min(jobs[k].units(), ceil_div(hi - start[k], length));
        if (first < last) scale_units(jobs[k], first, last);
      }
    }
  });
}

// outs[k] = xs[k] * factor_k broadcast along dims[k] (validated, wrapped dims). Contiguous
// inputs give contiguous outputs, strided ones outputs of the same strides.
std::vector<at::Tensor> scale_channels_list(at::TensorList xs, at::TensorList masks, double beta,
                                            const std::vector<int64_t>& dims, bool gradient_decay) {
  std::vector<at::Tensor> outs;
  std::vector<ScaleJob> jobs;
  outs.reserve(xs.size());
  jobs.reserve(xs.size());
  int64_t bytes = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    const at::Tensor& x = xs[k];
    auto factor = channel_factors(masks[k], beta, gradient_decay, x.scalar_type());
    if (!x.is_contiguous()) {
      outs.push_back(at::empty_like(x));
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lwdvc_masked_weight", [&] {
        scale_channels_strided<scalar_t>(x, outs.back(), factor, dims[k]);
      });
      continue;
    }
    outs.push_back(at::empty_like(x, at::MemoryFormat::Contiguous));
    if (x.numel() == 0) continue;  // no units: run_scale_jobs would divide by its unit length 0
    ScaleJob job;
    job.x = x.const_data_ptr();
    job.out = outs.back().mutable_data_ptr();
    job.dtype = x.scalar_type();
    job.view = channel_view(x, dims[k]);
    job.factor = std::move(factor);
    jobs.push_back(std::move(job));
    bytes += static_cast<int64_t>(x.nbytes());
  }
  for (auto& job : jobs) job.stream = bytes >= kStreamingBytes;
  run_scale_jobs(jobs);
  return outs;
}

}  // namespace

TORCH_LIBRARY_IMPL(lwdvc, CPU, m) { LWDVC_REGISTER_MASKED_WEIGHT_OPS(m, MaskedWeightOps<&scale_channels_list>); }

}  // namespace lwdvc
