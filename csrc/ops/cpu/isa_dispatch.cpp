// The CPU capability (see cpu_capability.h) and the per-ISA builds of isa/ chosen from it.
#include <ATen/Version.h>

#include <atomic>
#include <string>

#include "cpu_capability.h"
#include "isa/deform_sample.h"
#include "isa/narrow_conv.h"
#include "isa/scale_channels.h"

namespace lwdvc {

CpuCapability cpu_capability() {
  static const CpuCapability chosen = [] {
    // ATen's choice for this CPU ("DEFAULT", "AVX2", "AVX512", ...; honours ATEN_CPU_CAPABILITY).
    const std::string capability = at::get_cpu_capability();
    if (capability.rfind("AVX512", 0) == 0) return CpuCapability::kAVX512;
    if (capability == "AVX2") return CpuCapability::kAVX2;
    return CpuCapability::kDefault;
  }();
  return chosen;
}

const char* cpu_capability_name() {
  switch (cpu_capability()) {
    case CpuCapability::kAVX512: return "AVX512";
    case CpuCapability::kAVX2: return "AVX2";
    default: return "DEFAULT";
  }
}

ScaleUnitsFn scale_units_for_this_cpu() {
  switch (cpu_capability()) {
    case CpuCapability::kAVX512: return &scale_units_AVX512;
    case CpuCapability::kAVX2: return &scale_units_AVX2;
    default: return &scale_units_DEFAULT;
  }
}

DeformSampleRowFn deform_sample_for_this_cpu() {
  switch (cpu_capability()) {
    case CpuCapability::kAVX512: return &deform_sample_row_AVX512;
    case CpuCapability::kAVX2: return &deform_sample_row_AVX2;
    default: return &deform_sample_row_DEFAULT;
  }
}

NarrowConvRowsFn narrow_conv_for_this_cpu() {
  return cpu_has_avx512() ? &narrow_conv_rows_AVX512 : nullptr;
}

namespace {
std::atomic<bool> narrow_conv_in_epilogue_flag{true};
}  // namespace

bool narrow_conv_in_epilogue() { return narrow_conv_in_epilogue_flag.load(std::memory_order_relaxed); }

void set_narrow_conv_in_epilogue(bool enabled) { narrow_conv_in_epilogue_flag.store(enabled); }

}  // namespace lwdvc
