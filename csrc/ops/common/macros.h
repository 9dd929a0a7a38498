// Host/device qualifiers shared by the CPU and CUDA kernels.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define LWDVC_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define LWDVC_HOST_DEVICE inline
#endif
