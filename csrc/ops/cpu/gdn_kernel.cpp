// CPU kernel of gdn: fused GDN / IGDN in one pass over the input.
//
// Pixels are processed in blocks of kBlock: the block's channels are gathered into a buffer
// [C, kBlock] (float, or double for float64 inputs; NCHW or channels_last strides), squared,
// multiplied by gamma four output rows at a time (a small register-blocked GEMM), and the
// epilogue (sqrt, multiply or divide) writes the block back. The input and output are each
// touched once; nothing of full size is allocated besides the output. The block loop is compiled twice, for AVX-512 and for
// the baseline ISA, and chosen at run time from the CPU capability (cpu_capability.h).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../common/preconditions.h"
#include "../common/gdn.h"
#include "cpu_capability.h"

namespace lwdvc {
namespace {

constexpr int64_t kBlock = 32;  // pixels per block (two AVX-512 vectors)
constexpr int64_t kRows = 4;    // output channels per register block

struct GdnProblem {
  int64_t batch, channels, pixels;     // pixels = H * W
  int64_t stride_n, stride_c, stride_p;  // element strides of input and output
  bool inverse;
};

// Processes blocks [begin, end) of the flattened (image, pixel block) range.
// beta [C] and gamma [C, C] (row-major) are in the accumulation type acc_t.
template <typename scalar_t, typename acc_t>
[[gnu::always_inline]] inline void gdn_blocks_impl(const scalar_t* x, scalar_t* out, const acc_t* beta,
                                                    const acc_t* gamma, const GdnProblem& p, int64_t begin,
                                                    int64_t end) {
  const int64_t c_count = p.channels;
  const int64_t blocks_per_image = (p.pixels + kBlock - 1) / kBlock;
  std::vector<acc_t> xf_buffer(c_count * kBlock), xsq_buffer(c_count * kBlock);
  acc_t* __restrict__ xf = xf_buffer.data();
  acc_t* __restrict__ xsq = xsq_buffer.data();
  for (int64_t block = begin; block < end; ++block) {
    const int64_t n = block / blocks_per_image;
    const int64_t p0 = (block % blocks_per_image) * kBlock;
    const int64_t count = std::min(kBlock, p.pixels - p0);
    const scalar_t* xb = x + n * p.stride_n + p0 * p.stride_p;
    scalar_t* ob = out + n * p.stride_n + p0 * p.stride_p;
    for (int64_t c = 0; c < c_count; ++c) {
      acc_t* row = xf + c * kBlock;
      for (int64_t q = 0; q < count; ++q) row[q] = static_cast<acc_t>(xb[c * p.stride_c + q * p.stride_p]);
      for (int64_t q = count; q < kBlock; ++q) row[q] = acc_t(0);
      for (int64_t q = 0; q < kBlock; ++q) xsq[c * kBlock + q] = row[q] * row[q];
    }
    for (int64_t i0 = 0; i0 < c_count; i0 += kRows) {
      const int64_t rows = std::min(kRows, c_count - i0);
      acc_t acc[kRows][kBlock];
      for (int64_t r = 0; r < kRows; ++r) {
        const acc_t b = r < rows ? beta[i0 + r] : acc_t(0);
        for (int64_t q = 0; q < kBlock; ++q) acc[r][q] = b;
      }
      for (int64_t j = 0; j < c_count; ++j) {
        const acc_t* sq = xsq + j * kBlock;
        for (int64_t r = 0; r < kRows; ++r) {
          const acc_t g = r < rows ? gamma[(i0 + r) * c_count + j] : acc_t(0);
          for (int64_t q = 0; q < kBlock; ++q) acc[r][q] += g * sq[q];
        }
      }
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t i = i0 + r;
        const acc_t* xi = xf + i * kBlock;
        for (int64_t q = 0; q < count; ++q) {
          ob[i * p.stride_c + q * p.stride_p] = static_cast<scalar_t>(gdn_output(xi[q], acc[r][q], p.inverse));
        }
      }
    }
  }
}

template <typename scalar_t, typename acc_t>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c"))) void gdn_blocks_avx512(
    const scalar_t* x, scalar_t* out, const acc_t* beta, const acc_t* gamma, const GdnProblem& p,
    int64_t begin, int64_t end) {
  gdn_blocks_impl<scalar_t, acc_t>(x, out, beta, gamma, p, begin, end);
}

template <typename scalar_t, typename acc_t>
void gdn_blocks_default(const scalar_t* x, scalar_t* out, const acc_t* beta, const acc_t* gamma,
                        const GdnProblem& p, int64_t begin, int64_t end) {
  gdn_blocks_impl<scalar_t, acc_t>(x, out, beta, gamma, p, begin, end);
}

at::Tensor gdn_cpu(const at::Tensor& input, const at::Tensor& beta, const at::Tensor& gamma, bool inverse) {
  require_gdn(input, beta, gamma);
  const auto format = input.suggest_memory_format();
  const auto x = input.contiguous(format);
  auto out = at::empty_like(x, format);
  const auto acc_type = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const auto beta_acc = beta.to(acc_type).contiguous();
  const auto gamma_acc = gamma.to(acc_type).contiguous();
  const bool channels_last = format == at::MemoryFormat::ChannelsLast;
  GdnProblem p{x.size(0),
               x.size(1),
               x.size(2) * x.size(3),
               x.stride(0),
               x.stride(1),
               channels_last ? x.size(1) : 1,
               inverse};
  const int64_t blocks = p.batch * ((p.pixels + kBlock - 1) / kBlock);
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, p.channels * p.channels / 16));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "lwdvc_gdn", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    using acc_t = at::opmath_type<scalar_t>;
    const acc_t* bp = beta_acc.const_data_ptr<acc_t>();
    const acc_t* gp = gamma_acc.const_data_ptr<acc_t>();
    const auto run = cpu_has_avx512() ? &gdn_blocks_avx512<scalar_t, acc_t> : &gdn_blocks_default<scalar_t, acc_t>;
    at::parallel_for(0, blocks, grain, [&](int64_t begin, int64_t end) { run(xp, op, bp, gp, p, begin, end); });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lwdvc, CPU, m) { m.impl("gdn", &gdn_cpu); }

}  // namespace lwdvc
