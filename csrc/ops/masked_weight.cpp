// Schemas of the masked_weight ops. Kernels live in cpu/, cuda/ and autograd/.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(lwdvc, m) {
  // weight * mask, with the 1-D mask broadcast along `dim`.
  m.def("masked_weight(Tensor weight, Tensor mask, float beta, int dim) -> Tensor");
  // grad * (mask + beta * (1 - mask)), broadcast along `dim`: the gradient-decay backward.
  m.def("masked_weight_backward(Tensor grad, Tensor mask, float beta, int dim) -> Tensor");
  // The same over lists (one entry per tensor, one shared beta): every masked weight of a model
  // in one call, one parallel region on CPU and one autograd node for the whole list.
  m.def("masked_weights(Tensor[] weights, Tensor[] masks, float beta, int[] dims) -> Tensor[]");
  m.def("masked_weights_backward(Tensor[] grads, Tensor[] masks, float beta, int[] dims) -> Tensor[]");
}
