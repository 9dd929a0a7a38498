// Schema of channel_norm: per-channel L2 norm over a list of coupled weights.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(lwdvc, m) {
  // weights[k] is indexed by channel along dims[k]; every weight has the same number of
  // channels C there. Returns float32 [C]: sqrt(sum_k sum_{other dims} weights[k]^2).
  m.def("channel_norm(Tensor[] weights, int[] dims) -> Tensor");
}
