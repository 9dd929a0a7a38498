// The [outer, channels, inner] view of a tensor around one dim, used by every kernel.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace lwdvc {

// Sizes of the [outer, channels, inner] view of `t` around `dim`.
struct ChannelView {
  int64_t outer = 1, channels = 1, inner = 1;
};

inline ChannelView channel_view(const at::Tensor& t, int64_t dim) {
  ChannelView v;
  v.channels = t.size(dim);
  for (int64_t d = 0; d < dim; ++d) v.outer *= t.size(d);
  for (int64_t d = dim + 1; d < t.dim(); ++d) v.inner *= t.size(d);
  return v;
}

}  // namespace lwdvc
