// Validation of channel_norm's arguments, shared by the CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <vector>

#include "channel_view.h"
#include "checks.h"

namespace lwdvc {

// Returns the wrapped dims; all weights must share device and channel count.
inline std::vector<int64_t> check_channel_norm_args(at::TensorList weights, at::IntArrayRef dims) {
  const char* op = "channel_norm";
  TORCH_CHECK_VALUE(!weights.empty(), op, ": needs at least one weight");
  TORCH_CHECK_VALUE(weights.size() == dims.size(), op, ": got ", weights.size(), " weights but ",
                    dims.size(), " dims");
  std::vector<int64_t> wrapped;
  wrapped.reserve(dims.size());
  for (size_t k = 0; k < weights.size(); ++k) {
    check_floating_weight(op, "weight", weights[k]);
    wrapped.push_back(check_dim(op, "weight", weights[k], dims[k]));
    TORCH_CHECK_VALUE(weights[k].device() == weights[0].device(), op, ": weight ", k, " is on ",
                      weights[k].device(), " but weight 0 is on ", weights[0].device());
    TORCH_CHECK_VALUE(weights[k].size(wrapped[k]) == weights[0].size(wrapped[0]), op, ": weight ",
                      k, " has ", weights[k].size(wrapped[k]), " channels along dim ", wrapped[k],
                      " but weight 0 has ", weights[0].size(wrapped[0]));
  }
  return wrapped;
}

}  // namespace lwdvc
