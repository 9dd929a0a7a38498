// The CPU loop of masked_weight, compiled once per instruction set (see scale_channels.h).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>

#include "scale_channels.h"

#define LWDVC_CONCAT_INNER(a, b) a##_##b
#define LWDVC_CONCAT(a, b) LWDVC_CONCAT_INNER(a, b)

namespace lwdvc {
namespace {

constexpr int64_t kGrainElements = 32768;  // elements per parallel task (as ATen's GRAIN_SIZE)
constexpr int64_t kShortRow = 64;          // rows shorter than this use a repeated pattern row

template <typename scalar_t>
void scale_rows(const scalar_t* x, scalar_t* out, const std::vector<float>& factor_f, const ChannelView& v) {
  using Vec = at::vec::Vectorized<scalar_t>;
  std::vector<scalar_t> factor(factor_f.size());
  std::transform(factor_f.begin(), factor_f.end(), factor.begin(), [](float f) { return static_cast<scalar_t>(f); });
  if (v.inner >= kShortRow) {
    // Long rows (e.g. conv weights masked along dim 0): one scalar factor per row.
    const int64_t rows = v.outer * v.channels;
    const int64_t grain = std::max<int64_t>(1, kGrainElements / v.inner);
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t f = factor[r % v.channels];
        at::vec::map([f](Vec a) { return a * Vec(f); }, out + r * v.inner, x + r * v.inner, v.inner);
      }
    });
    return;
  }
  // Short rows (e.g. transposed-conv weights masked along dim 1, Linear along dim 1): expand the
  // factors once into a pattern of length channels * inner and multiply row blocks by it.
  const int64_t block = v.channels * v.inner;
  std::vector<scalar_t> pattern(block);
  for (int64_t c = 0; c < v.channels; ++c) std::fill_n(pattern.data() + c * v.inner, v.inner, factor[c]);
  const int64_t grain = std::max<int64_t>(1, kGrainElements / block);
  at::parallel_for(0, v.outer, grain, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      at::vec::map2([](Vec a, Vec b) { return a * b; }, out + o * block, x + o * block, pattern.data(), block);
    }
  });
}

}  // namespace

void LWDVC_CONCAT(scale_channels_contiguous, CPU_CAPABILITY)(const at::Tensor& x, at::Tensor& out,
                                                             const std::vector<float>& factor,
                                                             const ChannelView& view) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lwdvc_scale_channels", [&] {
    scale_rows<scalar_t>(x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), factor, view);
  });
}

}  // namespace lwdvc
