// The CPU loop of masked_weight(s), compiled once per instruction set (see scale_channels.h).
#include <ATen/Dispatch.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#if defined(CPU_CAPABILITY_AVX512)
#include <immintrin.h>
#endif

#include "scale_channels.h"

#define LWDVC_CONCAT_INNER(a, b) a##_##b
#define LWDVC_CONCAT(a, b) LWDVC_CONCAT_INNER(a, b)

namespace lwdvc {
namespace {

#if defined(CPU_CAPABILITY_AVX512)
// out[i] = x[i] * factor[i * kStep] (kStep 0: one factor for the whole row, 1: a pattern as long
// as the row) with 64-byte aligned streaming stores (scalar head and tail).
template <int kStep>
inline void scale_row_streaming(const float* x, float* out, const float* factor, int64_t n) {
  int64_t i = 0;
  for (; i < n && (reinterpret_cast<std::uintptr_t>(out + i) & 63) != 0; ++i) out[i] = x[i] * factor[i * kStep];
  const __m512 one_factor = _mm512_set1_ps(factor[0]);
  for (; i + 16 <= n; i += 16) {
    const __m512 f = kStep == 0 ? one_factor : _mm512_loadu_ps(factor + i);
    _mm512_stream_ps(out + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), f));
  }
  for (; i < n; ++i) out[i] = x[i] * factor[i * kStep];
}
#endif

template <typename scalar_t>
void scale_units(const ScaleJob& job, int64_t begin, int64_t end) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const auto* x = static_cast<const scalar_t*>(job.x);
  auto* out = static_cast<scalar_t*>(job.out);
  const ChannelView& v = job.view;
  if (job.long_rows()) {
    // Long rows (e.g. conv weights masked along dim 0): one scalar factor per row.
#if defined(CPU_CAPABILITY_AVX512)
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (job.stream) {
        for (int64_t r = begin; r < end; ++r) {
          const float f = factor_as<float>(job.factor[r % v.channels]);
          scale_row_streaming<0>(x + r * v.inner, out + r * v.inner, &f, v.inner);
        }
        _mm_sfence();  // make this thread's streaming stores visible before the parallel region ends
        return;
      }
    }
#endif
    for (int64_t r = begin; r < end; ++r) {
      const auto f = factor_as<scalar_t>(job.factor[r % v.channels]);
      at::vec::map([f](Vec a) { return a * Vec(f); }, out + r * v.inner, x + r * v.inner, v.inner);
    }
    return;
  }
  // Short rows (e.g. transposed-conv weights masked along dim 1, Linear along dim 1): expand the
  // factors into a pattern of length channels * inner and multiply row blocks by it.
  const int64_t block = v.channels * v.inner;
  std::vector<scalar_t> pattern(block);
  for (int64_t c = 0; c < v.channels; ++c) {
    std::fill_n(pattern.data() + c * v.inner, v.inner, factor_as<scalar_t>(job.factor[c]));
  }
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<scalar_t, float>) {
    if (job.stream) {
      for (int64_t o = begin; o < end; ++o) scale_row_streaming<1>(x + o * block, out + o * block, pattern.data(), block);
      _mm_sfence();
      return;
    }
  }
#endif
  for (int64_t o = begin; o < end; ++o) {
    at::vec::map2([](Vec a, Vec b) { return a * b; }, out + o * block, x + o * block, pattern.data(), block);
  }
}

}  // namespace

void LWDVC_CONCAT(scale_units, CPU_CAPABILITY)(const ScaleJob& job, int64_t unit_begin, int64_t unit_end) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, job.dtype, "lwdvc_scale_channels", [&] {
    scale_units<scalar_t>(job, unit_begin, unit_end);
  });
}

}  // namespace lwdvc
