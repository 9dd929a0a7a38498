// Autograd of masked_weight, in C++ so that a training step pays no Python overhead per weight.
//
// d weight = masked_weight_backward(grad, mask, beta, dim); the mask gets no gradient. The
// backward goes through the dispatcher, so every backend (CPU, CUDA, meta) is used as registered.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace lwdvc {
namespace {

at::Tensor call_masked_weight(const at::Tensor& weight, const at::Tensor& mask, double beta, int64_t dim) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("lwdvc::masked_weight", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double, int64_t)>();
  return op.call(weight, mask, beta, dim);
}

at::Tensor call_masked_weight_backward(const at::Tensor& grad, const at::Tensor& mask, double beta,
                                       int64_t dim) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("lwdvc::masked_weight_backward", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double, int64_t)>();
  return op.call(grad, mask, beta, dim);
}

// Both ops scale by per-channel factors, so both have the same derivative: the gradient-decay
// backward. kGradientDecay selects which op the forward computes (true: masked_weight_backward,
// which makes the backward op twice differentiable too).
template <bool kGradientDecay>
class ScaleChannelsFunction : public torch::autograd::Function<ScaleChannelsFunction<kGradientDecay>> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& weight,
                            const at::Tensor& mask, double beta, int64_t dim) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({mask});
    ctx->saved_data["beta"] = beta;
    ctx->saved_data["dim"] = dim;
    return kGradientDecay ? call_masked_weight_backward(weight, mask, beta, dim)
                          : call_masked_weight(weight, mask, beta, dim);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto mask = ctx->get_saved_variables()[0];
    const double beta = ctx->saved_data["beta"].toDouble();
    const int64_t dim = ctx->saved_data["dim"].toInt();
    // Gradient w.r.t. weight only; mask, beta and dim get none.
    return {call_masked_weight_backward(grads[0], mask, beta, dim), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};

at::Tensor masked_weight_autograd(const at::Tensor& weight, const at::Tensor& mask, double beta,
                                  int64_t dim) {
  return ScaleChannelsFunction<false>::apply(weight, mask, beta, dim);
}

at::Tensor masked_weight_backward_autograd(const at::Tensor& grad, const at::Tensor& mask, double beta,
                                           int64_t dim) {
  return ScaleChannelsFunction<true>::apply(grad, mask, beta, dim);
}

}  // namespace

TORCH_LIBRARY_IMPL(lwdvc, Autograd, m) {
  m.impl("masked_weight", &masked_weight_autograd);
  m.impl("masked_weight_backward", &masked_weight_backward_autograd);
}

}  // namespace lwdvc
