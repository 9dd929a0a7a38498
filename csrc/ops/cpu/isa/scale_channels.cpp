// The CPU loop of masked_weight, compiled once per instruction set (see scale_channels.h).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#if defined(CPU_CAPABILITY_AVX512)
#include <immintrin.h>
#endif

#include "scale_channels.h"

#define LWDVC_CONCAT_INNER(a, b) a##_##b
#define LWDVC_CONCAT(a, b) LWDVC_CONCAT_INNER(a, b)

namespace lwdvc {
namespace {

constexpr int64_t kGrainElements = 32768;  // elements per parallel task (as ATen's GRAIN_SIZE)
constexpr int64_t kShortRow = 64;          // rows shorter than this use a repeated pattern row

// Outputs at least this large bypass the cache (non-temporal stores): they do not fit in it
// anyway, and skipping the read-for-ownership of every destination line saves a third of the
// memory traffic of this memory-bound loop.
constexpr int64_t kStreamingBytes = int64_t{256} << 10;

#if defined(CPU_CAPABILITY_AVX512)
// out[i] = x[i] * f with 64-byte aligned streaming stores (scalar head and tail).
inline void scale_row_streaming(const float* x, float* out, float f, int64_t n) {
  int64_t i = 0;
  for (; i < n && (reinterpret_cast<std::uintptr_t>(out + i) & 63) != 0; ++i) out[i] = x[i] * f;
  const __m512 factor = _mm512_set1_ps(f);
  for (; i + 16 <= n; i += 16) _mm512_stream_ps(out + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), factor));
  for (; i < n; ++i) out[i] = x[i] * f;
}

// Long rows of a large float32 tensor through streaming stores; false when not applicable.
inline bool scale_rows_streaming(const float* x, float* out, const std::vector<float>& factor,
                                 const ChannelView& v) {
  const int64_t rows = v.outer * v.channels;
  if (rows * v.inner * static_cast<int64_t>(sizeof(float)) < kStreamingBytes) return false;
  const int64_t grain = std::max<int64_t>(1, kGrainElements / v.inner);
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      scale_row_streaming(x + r * v.inner, out + r * v.inner, factor[r % v.channels], v.inner);
    }
    _mm_sfence();  // make this thread's streaming stores visible before the region ends
  });
  return true;
}
#endif

template <typename scalar_t>
void scale_rows(const scalar_t* x, scalar_t* out, const std::vector<float>& factor_f, const ChannelView& v) {
  using Vec = at::vec::Vectorized<scalar_t>;
  std::vector<scalar_t> factor(factor_f.size());
  std::transform(factor_f.begin(), factor_f.end(), factor.begin(), [](float f) { return static_cast<scalar_t>(f); });
#if defined(CPU_CAPABILITY_AVX512)
  if constexpr (std::is_same_v<scalar_t, float>) {
    if (v.inner >= kShortRow && scale_rows_streaming(x, out, factor_f, v)) return;
  }
#endif
  if (v.inner >= kShortRow) {
    // Long rows (e.g. conv weights masked along dim 0): one scalar factor per row.
    const int64_t rows = v.outer * v.channels;
    const int64_t grain = std::max<int64_t>(1, kGrainElements / v.inner);
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t f = factor[r % v.channels];
        at::vec::map([f](Vec a) { return a * Vec(f); }, out + r * v.inner, x + r * v.inner, v.inner);
      }
    });
    return;
  }
  // Short rows (e.g. transposed-conv weights masked along dim 1, Linear along dim 1): expand the
  // factors once into a pattern of length channels * inner and multiply row blocks by it.
  const int64_t block = v.channels * v.inner;
  std::vector<scalar_t> pattern(block);
  for (int64_t c = 0; c < v.channels; ++c) std::fill_n(pattern.data() + c * v.inner, v.inner, factor[c]);
  const int64_t grain = std::max<int64_t>(1, kGrainElements / block);
  at::parallel_for(0, v.outer, grain, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      at::vec::map2([](Vec a, Vec b) { return a * b; }, out + o * block, x + o * block, pattern.data(), block);
    }
  });
}

}  // namespace

void LWDVC_CONCAT(scale_channels_contiguous, CPU_CAPABILITY)(const at::Tensor& x, at::Tensor& out,
                                                             const std::vector<float>& factor,
                                                             const ChannelView& view) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lwdvc_scale_channels", [&] {
    scale_rows<scalar_t>(x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), factor, view);
  });
}

}  // namespace lwdvc
