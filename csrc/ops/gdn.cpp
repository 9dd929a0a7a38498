// Schema of gdn: fused GDN / IGDN. Kernels live in cpu/ and cuda/.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(lwdvc, m) {
  // input [N, C, H, W], effective beta [C] and gamma [C, C];
  // out = input / sqrt(beta + gamma @ input^2) (GDN) or input * sqrt(...) (IGDN), per pixel, in
  // one pass. Inference only (no autograd).
  m.def("gdn(Tensor input, Tensor beta, Tensor gamma, bool inverse) -> Tensor");
}
