// The four masked_weight ops (single tensor and list, forward and backward) over one backend's
// "scale the channels of a list of tensors" function, so that the CPU and CUDA files register
// the same entry points (preconditions checked) without twin code.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "preconditions.h"

namespace lwdvc {

// outs[k] = xs[k] * factor[channel along dims[k]]: factor = masks[k] (gradient_decay false) or
// masks[k] + beta * (1 - masks[k]) (true). Preconditions hold; dims are wrapped.
using ScaleChannelsListFn = std::vector<at::Tensor> (*)(at::TensorList xs, at::TensorList masks, double beta,
                                                        const std::vector<int64_t>& dims, bool gradient_decay);

template <ScaleChannelsListFn kScaleList>
struct MaskedWeightOps {
  static at::Tensor forward(const at::Tensor& weight, const at::Tensor& mask, double beta, int64_t dim) {
    const int64_t d = require_channel_mask("masked_weight", weight, mask, dim);
    return kScaleList(weight, mask, beta, {d}, /*gradient_decay=*/false)[0];
  }

  static at::Tensor backward(const at::Tensor& grad, const at::Tensor& mask, double beta, int64_t dim) {
    const int64_t d = require_channel_mask("masked_weight_backward", grad, mask, dim);
    return kScaleList(grad, mask, beta, {d}, /*gradient_decay=*/true)[0];
  }

  static std::vector<at::Tensor> forward_list(at::TensorList weights, at::TensorList masks, double beta,
                                              at::IntArrayRef dims) {
    const auto d = require_channel_masks("masked_weights", weights, masks, dims);
    return kScaleList(weights, masks, beta, d, /*gradient_decay=*/false);
  }

  static std::vector<at::Tensor> backward_list(at::TensorList grads, at::TensorList masks, double beta,
                                               at::IntArrayRef dims) {
    const auto d = require_channel_masks("masked_weights_backward", grads, masks, dims);
    return kScaleList(grads, masks, beta, d, /*gradient_decay=*/true);
  }
};

}  // namespace lwdvc

// Registers the four ops of `ops` (a MaskedWeightOps<...>) on the library `m`.
#define LWDVC_REGISTER_MASKED_WEIGHT_OPS(m, ops)            \
  do {                                                       \
    (m).impl("masked_weight", &ops::forward);                \
    (m).impl("masked_weight_backward", &ops::backward);      \
    (m).impl("masked_weights", &ops::forward_list);          \
    (m).impl("masked_weights_backward", &ops::backward_list); \
  } while (false)
