// The Python extension lwdvc_kernels._C. Importing it registers every lwdvc op with the
// dispatcher (static TORCH_LIBRARY initialisers); the module itself only reports the build.
#include <pybind11/pybind11.h>

#include "ops/cpu/cpu_capability.h"
#include "ops/cpu/isa/narrow_conv.h"

#ifndef LWDVC_WITH_CUDA
#define LWDVC_WITH_CUDA 0
#endif
#ifndef LWDVC_CUDA_ARCHS
#define LWDVC_CUDA_ARCHS ""
#endif

PYBIND11_MODULE(_C, m) {
  m.doc() = "lwdvc kernels: importing this module registers the torch.ops.lwdvc operators";
  m.attr("with_cuda") = static_cast<bool>(LWDVC_WITH_CUDA);
  m.attr("cuda_archs") = LWDVC_CUDA_ARCHS;
  m.def("cpu_capability", &lwdvc::cpu_capability_name,
        "instruction set of the CPU kernels: ATen's choice (ATEN_CPU_CAPABILITY forces a lower one)");
  m.def("cpu_narrow_conv", [] { return lwdvc::narrow_conv_for_this_cpu() != nullptr; },
        "whether conv2d_narrow's AVX-512 kernel runs on this CPU");
  m.def("narrow_conv_in_epilogue", &lwdvc::narrow_conv_in_epilogue,
        "whether conv2d_epilogue routes convs with few output channels to the narrow kernel");
  m.def("set_narrow_conv_in_epilogue", &lwdvc::set_narrow_conv_in_epilogue, pybind11::arg("enabled"));
}
