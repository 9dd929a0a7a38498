// oneDNN's linear layer with an optional activation post-op, shared by the CPU kernels.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <optional>
#include <string>
#include <vector>

namespace lwdvc {

// act(rows [M, K] @ weight[N, K]^T + bias) -> a new [M, N] through mkldnn::_linear_pointwise (the
// op torch's CPU fusion passes emit; on this project's CPU about twice as fast as at::mm for
// float32 tiles). `activation`: "none", "relu" or "leaky_relu" (with `negative_slope`). nullopt
// when the op is not registered or has no kernel for the dtype on this CPU (bf16 without
// AVX-512): the caller then uses its own fallback.
inline std::optional<at::Tensor> onednn_linear(const at::Tensor& rows, const at::Tensor& weight,
                                               const std::optional<at::Tensor>& bias,
                                               const std::string& activation = "none",
                                               double negative_slope = 0.0) {
  static const auto op = c10::Dispatcher::singleton().findSchema({"mkldnn::_linear_pointwise", ""});
  if (!op.has_value() || !at::hasMKLDNN()) return std::nullopt;
  std::vector<c10::IValue> stack;
  stack.emplace_back(rows);
  stack.emplace_back(weight);
  // contiguous: oneDNN reads a strided bias as if it were dense
  stack.emplace_back(bias.has_value() ? c10::IValue(bias->contiguous()) : c10::IValue());
  stack.emplace_back(activation);
  c10::List<std::optional<at::Scalar>> scalars;
  if (activation == "leaky_relu") scalars.push_back(at::Scalar(negative_slope));
  stack.emplace_back(scalars);
  stack.emplace_back(std::string(""));
  try {
    op->callBoxed(&stack);
  } catch (const c10::Error&) {
    return std::nullopt;
  }
  return stack[0].toTensor();
}

}  // namespace lwdvc
