// Autograd of masked_weight(s), in C++ so that a training step pays no Python overhead per weight.
//
// d weight = masked_weight_backward(grad, mask, beta, dim); the mask gets no gradient. The list
// op masked_weights has ONE node for the whole list, whose backward is one
// masked_weights_backward call. Both go through the dispatcher, so every backend (CPU, CUDA,
// meta) is used as registered.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <vector>

namespace lwdvc {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using ScaleOneSignature = at::Tensor(const at::Tensor&, const at::Tensor&, double, int64_t);
using ScaleListSignature = std::vector<at::Tensor>(at::TensorList, at::TensorList, double, at::IntArrayRef);

template <typename Signature>
c10::TypedOperatorHandle<Signature> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

// masked_weight (kGradientDecay false) or masked_weight_backward (true).
template <bool kGradientDecay>
at::Tensor scale_one(const at::Tensor& x, const at::Tensor& mask, double beta, int64_t dim) {
  static const auto op =
      find_op<ScaleOneSignature>(kGradientDecay ? "lwdvc::masked_weight_backward" : "lwdvc::masked_weight");
  return op.call(x, mask, beta, dim);
}

// masked_weights (kGradientDecay false) or masked_weights_backward (true).
template <bool kGradientDecay>
std::vector<at::Tensor> scale_list(at::TensorList xs, at::TensorList masks, double beta, at::IntArrayRef dims) {
  static const auto op =
      find_op<ScaleListSignature>(kGradientDecay ? "lwdvc::masked_weights_backward" : "lwdvc::masked_weights");
  return op.call(xs, masks, beta, dims);
}

// Both ops scale by per-channel factors, so both have the same derivative: the gradient-decay
// backward. kGradientDecay selects which op the forward computes (true: masked_weight_backward,
// which makes the backward op twice differentiable too).
template <bool kGradientDecay>
class ScaleChannelsFunction : public torch::autograd::Function<ScaleChannelsFunction<kGradientDecay>> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& weight, const at::Tensor& mask, double beta,
                            int64_t dim) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({mask});
    ctx->saved_data["beta"] = beta;
    ctx->saved_data["dim"] = dim;
    return scale_one<kGradientDecay>(weight, mask, beta, dim);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto mask = ctx->get_saved_variables()[0];
    const double beta = ctx->saved_data["beta"].toDouble();
    const int64_t dim = ctx->saved_data["dim"].toInt();
    // Gradient w.r.t. weight only; mask, beta and dim get none.
    return {scale_one<true>(grads[0], mask, beta, dim), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// The list version: one node, gradients for the first list only. Outputs whose gradient is
// undefined (unused in the loss) and inputs that need none are skipped, not zero-filled.
template <bool kGradientDecay>
class ScaleChannelsListFunction
    : public torch::autograd::Function<ScaleChannelsListFunction<kGradientDecay>> {
 public:
  static variable_list forward(AutogradContext* ctx, at::TensorList xs, at::TensorList masks, double beta,
                               at::IntArrayRef dims) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward(masks.vec());
    ctx->saved_data["beta"] = beta;
    ctx->saved_data["dims"] = dims.vec();
    ctx->set_materialize_grads(false);
    return scale_list<kGradientDecay>(xs, masks, beta, dims);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto masks = ctx->get_saved_variables();
    const double beta = ctx->saved_data["beta"].toDouble();
    const auto dims = ctx->saved_data["dims"].toIntVector();
    std::vector<at::Tensor> live_grads, live_masks;
    std::vector<int64_t> live_dims;
    std::vector<size_t> positions;
    for (size_t k = 0; k < masks.size(); ++k) {
      if (!grads[k].defined() || !ctx->needs_input_grad(k)) continue;
      live_grads.push_back(grads[k]);
      live_masks.push_back(masks[k]);
      live_dims.push_back(dims[k]);
      positions.push_back(k);
    }
    // One entry per forward input: the tensors of xs, then of masks (none), beta, dims (none).
    variable_list result(2 * masks.size() + 2);
    if (positions.empty()) return result;
    auto scaled = scale_list<true>(live_grads, live_masks, beta, live_dims);
    for (size_t j = 0; j < positions.size(); ++j) result[positions[j]] = std::move(scaled[j]);
    return result;
  }
};

at::Tensor masked_weight_autograd(const at::Tensor& weight, const at::Tensor& mask, double beta, int64_t dim) {
  return ScaleChannelsFunction<false>::apply(weight, mask, beta, dim);
}

at::Tensor masked_weight_backward_autograd(const at::Tensor& grad, const at::Tensor& mask, double beta,
                                           int64_t dim) {
  return ScaleChannelsFunction<true>::apply(grad, mask, beta, dim);
}

std::vector<at::Tensor> masked_weights_autograd(at::TensorList weights, at::TensorList masks, double beta,
                                                at::IntArrayRef dims) {
  return ScaleChannelsListFunction<false>::apply(weights, masks, beta, dims);
}

std::vector<at::Tensor> masked_weights_backward_autograd(at::TensorList grads, at::TensorList masks, double beta,
                                                         at::IntArrayRef dims) {
  return ScaleChannelsListFunction<true>::apply(grads, masks, beta, dims);
}

}  // namespace

TORCH_LIBRARY_IMPL(lwdvc, Autograd, m) {
  m.impl("masked_weight", &masked_weight_autograd);
  m.impl("masked_weight_backward", &masked_weight_backward_autograd);
  m.impl("masked_weights", &masked_weights_autograd);
  m.impl("masked_weights_backward", &masked_weights_backward_autograd);
}

}  // namespace lwdvc
