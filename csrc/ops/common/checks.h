// Input validation shared by every C++ backend; the messages match lwdvc_kernels/ops/validation.py.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace lwdvc {

inline void check_floating_weight(const char* op, const char* name, const at::Tensor& t) {
  TORCH_CHECK_TYPE(at::isFloatingType(t.scalar_type()), op, ": ", name,
                   " must be a floating-point tensor (float16, bfloat16, float32 or float64), got ",
                   t.scalar_type());
  TORCH_CHECK_VALUE(t.numel() > 0, op, ": ", name, " is empty (shape ", t.sizes(), ")");
}

// Returns the wrapped (non-negative) dim.
inline int64_t check_dim(const char* op, const char* name, const at::Tensor& t, int64_t dim) {
  const int64_t ndim = t.dim();
  TORCH_CHECK_INDEX(ndim > 0, op, ": ", name, " must have at least one dimension");
  TORCH_CHECK_INDEX(dim >= -ndim && dim < ndim, op, ": dim ", dim, " is out of range for ", name,
                    " of shape ", t.sizes(), " (expected -", ndim, " <= dim < ", ndim, ")");
  return dim < 0 ? dim + ndim : dim;
}

inline void check_mask(const char* op, const at::Tensor& weight, const at::Tensor& mask, int64_t dim) {
  TORCH_CHECK_TYPE(at::isFloatingType(mask.scalar_type()) || mask.scalar_type() == at::kBool, op,
                   ": mask must be a floating-point or bool tensor, got ", mask.scalar_type());
  TORCH_CHECK_VALUE(mask.dim() == 1, op, ": mask must be 1-D, got shape ", mask.sizes());
  TORCH_CHECK_VALUE(mask.size(0) == weight.size(dim), op, ": mask has length ", mask.size(0),
                    " but the tensor has size ", weight.size(dim), " along dim ", dim, " (shape ",
                    weight.sizes(), ")");
  TORCH_CHECK_VALUE(mask.device() == weight.device(), op, ": mask is on ", mask.device(),
                    " but the tensor is on ", weight.device());
}

inline void check_beta(const char* op, double beta) {
  TORCH_CHECK_VALUE(std::isfinite(beta) && beta >= 0.0 && beta <= 1.0, op,
                    ": beta must lie in [0, 1], got ", beta);
}

// Full validation of masked_weight(weight, mask, beta, dim); returns the wrapped dim.
// `name` is how the op calls its first argument ("weight" or "grad").
inline int64_t check_masked_weight_args(const char* op, const char* name, const at::Tensor& weight,
                                        const at::Tensor& mask, double beta, int64_t dim) {
  check_floating_weight(op, name, weight);
  const int64_t d = check_dim(op, name, weight, dim);
  check_mask(op, weight, mask, d);
  check_beta(op, beta);
  return d;
}

// Full validation of masked_weights(weights, masks, beta, dims); returns the wrapped dims.
// Errors about one tensor name its index ("<op>: tensor 3: mask has length ..."). All tensors
// must share one device; their dtypes may differ.
inline std::vector<int64_t> check_masked_weights_args(const char* op, const char* name,
                                                      at::TensorList weights, at::TensorList masks,
                                                      double beta, at::IntArrayRef dims) {
  TORCH_CHECK_VALUE(!weights.empty(), op, ": needs at least one ", name);
  TORCH_CHECK_VALUE(weights.size() == masks.size() && weights.size() == dims.size(), op, ": got ",
                    weights.size(), " ", name, "s, ", masks.size(), " masks and ", dims.size(),
                    " dims");
  check_beta(op, beta);
  std::vector<int64_t> wrapped;
  wrapped.reserve(weights.size());
  for (size_t k = 0; k < weights.size(); ++k) {
    const std::string label = std::string(op) + ": tensor " + std::to_string(k);
    wrapped.push_back(check_masked_weight_args(label.c_str(), name, weights[k], masks[k], beta, dims[k]));
    TORCH_CHECK_VALUE(weights[k].device() == weights[0].device(), op, ": tensor ", k, " is on ",
                      weights[k].device(), " but tensor 0 is on ", weights[0].device());
  }
  return wrapped;
}

}  // namespace lwdvc
