// Chooses the per-ISA build of the masked_weight CPU loop for the running CPU.
#include <ATen/Version.h>

#include <string>

#include "scale_channels.h"

namespace lwdvc {

ScaleUnitsFn scale_units_for_this_cpu() {
  // ATen's own choice for this CPU ("DEFAULT", "AVX2", "AVX512", ...; honours ATEN_CPU_CAPABILITY).
  const std::string capability = at::get_cpu_capability();
  if (capability.rfind("AVX512", 0) == 0) return &scale_units_AVX512;
  if (capability == "AVX2") return &scale_units_AVX2;
  return &scale_units_DEFAULT;
}

}  // namespace lwdvc
