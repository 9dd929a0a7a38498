// Schema of deform_conv2d: DCNv1 deformable convolution. The CPU kernel lives in cpu/; there is
// no CUDA kernel (torchvision's stays the GPU path, see lwdvc_kernels/ops/deform_conv2d.py).
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(lwdvc, m) {
  // input [N, Cin, H, W], weight [Cout, Cin/groups, kh, kw], offset [N, 2*offset_groups*kh*kw,
  // Ho, Wo] in torchvision's layout (channel g*2*kh*kw + 2*(i*kw + j) holds dy of tap (i, j) of
  // offset group g, the next one dx); bilinear sampling, zeros outside the input. No modulation
  // mask. offset_group_sizes (optional, offset_groups entries >= 0 summing to Cin): how many
  // consecutive input channels each offset group holds, for layers whose groups became uneven
  // (default: Cin / offset_groups each, torchvision's rule). Inference only (no autograd).
  m.def(
      "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor? bias, int[2] stride, int[2] padding, "
      "int[2] dilation, int groups, int offset_groups, int[]? offset_group_sizes=None) -> Tensor");
}
