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
// Squares and sums in double: float32 squares overflow above 1.8e19 and underflow below 1e-19,
// and a float32 sum stops growing at 2^24 (2^25 ones summed to 2^24). Every float32 / bfloat16 /
// float16 square is exact in double and no double sum of them overflows; float64 inputs keep
// their precision (above 1e154 their norm is beyond the float32 result's range anyway).
template <typename scalar_t>
void accumulate_channel_sumsq(const scalar_t* x, const ChannelView& v, double* sumsq) {
  // Parallel over channels, but only once a task has enough elements to pay for a thread.
  const int64_t per_channel = std::max<int64_t>(1, v.outer * v.inner);
  const int64_t grain = std::max<int64_t>(1, 32768 / per_channel);
  at::parallel_for(0, v.channels, grain, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      double acc[4] = {0.0, 0.0, 0.0, 0.0};  // independent sums: the adds overlap
      for (int64_t o = 0; o < v.outer; ++o) {
        const scalar_t* row = x + (o * v.channels + c) * v.inner;
        int64_t i = 0;
        for (; i + 4 <= v.inner; i += 4) {
          for (int j = 0; j < 4; ++j) {
            const double value = static_cast<double>(row[i + j]);
            acc[j] += value * value;
          }
        }
        for (; i < v.inner; ++i) {
          const double value = static_cast<double>(row[i]);
          acc[0] += value * value;
        }
      }
      sumsq[c] += (acc[0] + acc[1]) + (acc[2] + acc[3]);
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
