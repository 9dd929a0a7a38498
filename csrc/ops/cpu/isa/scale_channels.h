// Per-ISA builds of the CPU "scale every channel" loop behind masked_weight and its backward.
//
// isa/scale_channels.cpp is compiled once per instruction set (DEFAULT, AVX2, AVX512), each
// build defining CPU_CAPABILITY so that at::vec uses that set's intrinsics; scale_channels()
// picks the best one the running CPU supports (ATEN_CPU_CAPABILITY overrides, as for ATen).
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "../../common/channel_view.h"

namespace lwdvc {

// out = x * factor[channel] for contiguous x and out viewed as [outer, channels, inner];
// factor holds `channels` floats, rounded to x's dtype before use.
using ScaleChannelsFn = void (*)(const at::Tensor& x, at::Tensor& out, const std::vector<float>& factor,
                                 const ChannelView& view);

void scale_channels_contiguous_DEFAULT(const at::Tensor&, at::Tensor&, const std::vector<float>&,
                                       const ChannelView&);
void scale_channels_contiguous_AVX2(const at::Tensor&, at::Tensor&, const std::vector<float>&,
                                    const ChannelView&);
void scale_channels_contiguous_AVX512(const at::Tensor&, at::Tensor&, const std::vector<float>&,
                                      const ChannelView&);

// The build for the best instruction set of this CPU.
ScaleChannelsFn scale_channels_contiguous_for_this_cpu();

}  // namespace lwdvc
