// CUDA kernel of to_channels_last: ATen's copy into a channels_last tensor of the target dtype
// (a single fused cast + transpose pass on the GPU already); kept so that the op dispatches on
// every device.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../common/preconditions.h"

namespace lwdvc {
namespace {

at::Tensor to_channels_last_cuda(const at::Tensor& input, std::optional<at::ScalarType> dtype) {
  const auto out_type = require_to_channels_last(input, dtype);
  const c10::cuda::CUDAGuard guard(input.device());
  auto out = at::empty(input.sizes(), input.options().dtype(out_type).memory_format(at::MemoryFormat::ChannelsLast));
  out.copy_(input);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lwdvc, CUDA, m) { m.impl("to_channels_last", &to_channels_last_cuda); }

}  // namespace lwdvc
