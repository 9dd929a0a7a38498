// Validation of to_channels_last, shared by the CPU and CUDA kernels.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <optional>

#include "checks.h"

namespace lwdvc {

// Returns the output dtype.
inline at::ScalarType check_to_channels_last_args(const at::Tensor& input, std::optional<at::ScalarType> dtype) {
  const char* op = "to_channels_last";
  check_floating_weight(op, "input", input);
  TORCH_CHECK_VALUE(input.dim() == 4, op, ": input must be 4-D [N, C, H, W], got shape ", input.sizes());
  const auto out = dtype.value_or(input.scalar_type());
  TORCH_CHECK_TYPE(at::isFloatingType(out), op, ": dtype must be a floating-point type, got ", out);
  return out;
}

}  // namespace lwdvc
