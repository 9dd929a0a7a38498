// Schema of to_channels_last: layout (and dtype) conversion in one pass. Kernels in cpu/, cuda/.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(lwdvc, m) {
  // input [N, C, H, W] (any strides) -> the same values in channels_last, cast to `dtype` when given.
  m.def("to_channels_last(Tensor input, ScalarType? dtype) -> Tensor");
}
