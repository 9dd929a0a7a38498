// The instruction set the CPU kernels run with: the one mechanism by which every CPU kernel picks
// its code path (per-ISA builds in isa/, or functions compiled with a target attribute).
//
// It is ATen's own choice, at::get_cpu_capability(), so ATEN_CPU_CAPABILITY=default|avx2|avx512
// (read when torch starts) forces a lower set here exactly as for ATen's kernels: every path can
// be tested on an AVX-512 machine (tests/ops/test_cpu_capability.py).
#pragma once

namespace lwdvc {

enum class CpuCapability : int { kDefault = 0, kAVX2 = 1, kAVX512 = 2 };

// Decided once per process.
CpuCapability cpu_capability();

// Name of cpu_capability() ("DEFAULT", "AVX2", "AVX512").
const char* cpu_capability_name();

inline bool cpu_has_avx2() { return cpu_capability() >= CpuCapability::kAVX2; }
inline bool cpu_has_avx512() { return cpu_capability() >= CpuCapability::kAVX512; }

}  // namespace lwdvc
