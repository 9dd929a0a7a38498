// Chooses the per-ISA builds of the CPU loops (masked_weight's scaling, the narrow conv) for the running CPU.
#include <ATen/Version.h>

#include <atomic>
#include <string>

#include "narrow_conv.h"
#include "scale_channels.h"

namespace lwdvc {

ScaleUnitsFn scale_units_for_this_cpu() {
  // ATen's own choice for this CPU ("DEFAULT", "AVX2", "AVX512", ...; honours ATEN_CPU_CAPABILITY).
  const std::string capability = at::get_cpu_capability();
  if (capability.rfind("AVX512", 0) == 0) return &scale_units_AVX512;
  if (capability == "AVX2") return &scale_units_AVX2;
  return &scale_units_DEFAULT;
}

namespace {
std::atomic<bool> narrow_conv_in_epilogue_flag{true};
}  // namespace

bool narrow_conv_in_epilogue() { return narrow_conv_in_epilogue_flag.load(std::memory_order_relaxed); }

void set_narrow_conv_in_epilogue(bool enabled) { narrow_conv_in_epilogue_flag.store(enabled); }

NarrowConvRowsFn narrow_conv_for_this_cpu() {
  // Decided once: conv2d_epilogue asks on every call.
  static const NarrowConvRowsFn chosen =
      at::get_cpu_capability().rfind("AVX512", 0) == 0 ? &narrow_conv_rows_AVX512 : nullptr;
  return chosen;
}

}  // namespace lwdvc
