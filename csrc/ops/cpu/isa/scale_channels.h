// Per-ISA builds of the CPU "scale every channel" loop behind masked_weight(s) and their backward.
//
// isa/scale_channels.cpp is compiled once per instruction set (DEFAULT, AVX2, AVX512), each
// build defining CPU_CAPABILITY so that at::vec uses that set's intrinsics;
// scale_units_for_this_cpu() picks the best one the running CPU supports (ATEN_CPU_CAPABILITY
// overrides, as for ATen). The loop is serial over a range of work units; the caller spreads
// the units of one or many tensors over threads.
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <vector>

#include "../../common/channel_view.h"
#include "../../common/masked_weight.h"

namespace lwdvc {

// Rows shorter than this are processed in blocks of `channels` rows through a repeated pattern.
constexpr int64_t kShortRow = 64;

// Calls whose outputs add up to at least this many bytes bypass the cache with non-temporal
// stores (float32, AVX512 build): the outputs do not stay in it anyway, and skipping the
// read-for-ownership of every destination line saves a third of the memory traffic of this
// memory-bound loop. Decided for the whole call, so a list's small tensors stream too.
constexpr int64_t kStreamingBytes = int64_t{256} << 10;

// A per-channel factor held as double (ScaleJob::factor) as scalar_t: through factor_t<scalar_t>,
// so that a float factor (every dtype but double) is rounded to scalar_t as a float would be.
template <typename scalar_t>
inline scalar_t factor_as(double factor) {
  return static_cast<scalar_t>(static_cast<factor_t<scalar_t>>(factor));
}

// One tensor to scale: out = x * factor[channel] for contiguous x and out viewed as
// [outer, channels, inner]. The work is cut into units: a row of `inner` elements with one
// factor (long rows, inner >= kShortRow) or a block of channels * inner elements (short rows).
struct ScaleJob {
  const void* x = nullptr;
  void* out = nullptr;
  c10::ScalarType dtype = c10::ScalarType::Float;
  ChannelView view;
  // [channels]: computed in factor_t of dtype (double for double tensors; float, exact in a
  // double, for the others), rounded to dtype before use (factor_as).
  std::vector<double> factor;
  bool stream = false;  // non-temporal stores allowed (see kStreamingBytes)

  bool long_rows() const { return view.inner >= kShortRow; }
  int64_t numel() const { return view.outer * view.channels * view.inner; }
  // Elements per unit.
  int64_t unit_length() const { return long_rows() ? view.inner : view.channels * view.inner; }
  int64_t units() const { return long_rows() ? view.outer * view.channels : view.outer; }
};

// Scales units [unit_begin, unit_end) of `job`, serially (float32 jobs with `stream` use
// non-temporal stores in the AVX512 build, fenced before returning).
using ScaleUnitsFn = void (*)(const ScaleJob& job, int64_t unit_begin, int64_t unit_end);

void scale_units_DEFAULT(const ScaleJob&, int64_t, int64_t);
void scale_units_AVX2(const ScaleJob&, int64_t, int64_t);
void scale_units_AVX512(const ScaleJob&, int64_t, int64_t);

// The build for the best instruction set of this CPU.
ScaleUnitsFn scale_units_for_this_cpu();

}  // namespace lwdvc
