// CPU kernel of channel_norm: per-channel L2 norm over a list of coupled weights.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>

#include "../common/channel_view.h"
#include "../common/preconditions.h"

namespace lwdvc {
namespace {

// Adds sum_{o, i} x[o, c, i]^2 to sumsq[c] for a contiguous x viewed as [outer, channels, inner].
template <typename scalar_t>
void accumulate_channel_sumsq(const scalar_t* x, const ChannelView& v, double* sumsq) {
  // Parallel over channels, but only once a task has enough elements to pay for a thread.
  const int64_t per_channel = std::max<int64_t>(1, v.outer * v.inner);
  const int64_t grain = std::max<int64_t>(1, 32768 / per_channel);
  at::parallel_for(0, v.channels, grain, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      double acc = 0.0;
      for (int64_t o = 0; o < v.outer; ++o) {
        const scalar_t* row = x + (o * v.channels + c) * v.inner;
        float partial = 0.0f;  // float partials vectorise; rows are short enough for float
        for (int64_t i = 0; i < v.inner; ++i) {
          const float value = static_cast<float>(row[i]);
          partial += value * value;
        }
        acc += partial;
      }
      sumsq[c] += acc;
    }
  });
}

at::Tensor channel_norm_cpu(at::TensorList weights, at::IntArrayRef dims) {
  const auto wrapped = require_coupled_channels("channel_norm", weights, dims);
  const int64_t channels = weights[0].size(wrapped[0]);
  auto sumsq = at::zeros({channels}, weights[0].options().dtype(at::kDouble));
  double* acc = sumsq.data_ptr<double>();
  for (size_t k = 0; k < weights.size(); ++k) {
    const auto w = weights[k].contiguous();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, w.scalar_type(), "lwdvc_channel_norm", [&] {
      accumulate_channel_sumsq<scalar_t>(w.const_data_ptr<scalar_t>(), channel_view(w, wrapped[k]), acc);
    });
  }
  return sumsq.sqrt_().to(at::kFloat);
}

}  // namespace

TORCH_LIBRARY_IMPL(lwdvc, CPU, m) { m.impl("channel_norm", &channel_norm_cpu); }

}  // namespace lwdvc
