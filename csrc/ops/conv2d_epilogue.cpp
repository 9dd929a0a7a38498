// Schema of conv2d_epilogue: a 2-D convolution with a fused epilogue. Kernels live in cpu/ and cuda/.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(lwdvc, m) {
  // out = pixel_shuffle(act(conv2d(input, weight, bias)), upscale) + residual, in one pass over
  // the conv output. activation: "none" | "relu" | "leaky_relu" (negative_slope); upscale 1 means
  // no shuffle; residual has the output shape. Inference only (no autograd).
  m.def(
      "conv2d_epilogue(Tensor input, Tensor weight, Tensor? bias, Tensor? residual, int[2] stride, "
      "int[2] padding, int[2] dilation, int groups, str activation, float negative_slope, int upscale) "
      "-> Tensor");
  // act(conv2d(input, weight, bias)) + residual for 1-8 output channels (groups 1, dilation 1,
  // float32), through the CPU's narrow direct-conv kernel (AVX-512); output channels_last.
  m.def(
      "conv2d_narrow(Tensor input, Tensor weight, Tensor? bias, Tensor? residual, int[2] stride, "
      "int[2] padding, str activation, float negative_slope) -> Tensor");
}
