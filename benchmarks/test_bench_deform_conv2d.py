"""Deformable convolution on CPU: torchvision's kernel vs the engine's ``deform_conv2d``.

FVC's aligner conv: 64 -> 64 channels, 3x3, 8 offset groups, no bias. Shapes: quarter resolution
of 448x256 and 960x544 frames ([1, 64, 64, 112], [1, 64, 136, 240]), and the resolution the FVC
decoder actually runs it at (half of the padded frame: [1, 64, 128, 224] for 448x256,
[1, 64, 288, 480] for 960x544 padded to 960x576); plus a compacted layer, 23 -> 29 channels whose
8 deformable groups kept uneven channel counts (2, 3, 4, 1, 2, 3, 3, 5): the engine's kernel takes
them as ``offset_group_sizes``, torchvision needs the offsets expanded to one group per channel
(timed as part of its call, as DeformConv2d does it).

Providers: ``torchvision-fp32`` (the baseline, NCHW), ``lwdvc-fp32-nchw``, ``lwdvc-fp32-cl`` and
``lwdvc-bf16-cl`` (channels_last input and offsets, as ``lwdvc_kernels.optimize`` runs it).
Offsets are a smooth random field of a few pixels plus sub-pixel noise, like a motion field;
some taps fall outside the map. Extra per row: GMAC/s (GEMM + bilinear sampling MACs).
Run: ``pytest benchmarks/test_bench_deform_conv2d.py --benchmark-only``.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lwdvc_kernels import ops
from lwdvc_kernels.macs import deform_conv2d_macs

# (label, in channels, out channels, offset groups, height, width, channels per offset group)
SHAPES = [
    ("448x256 quarter", 64, 64, 8, 64, 112, None),
    ("960x544 quarter", 64, 64, 8, 136, 240, None),
    ("448x256 fvc", 64, 64, 8, 128, 224, None),
    ("960x544 fvc", 64, 64, 8, 288, 480, None),
    ("448x256 fvc compacted 23->29", 23, 29, 8, 128, 224, (2, 3, 4, 1, 2, 3, 3, 5)),
]
PROVIDERS = ["torchvision-fp32", "lwdvc-fp32-nchw", "lwdvc-fp32-cl", "lwdvc-bf16-cl"]


def _inputs(cin: int, cout: int, offset_groups: int, height: int, width: int):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, cin, height, width, generator=g)
    coarse = 3.0 * torch.randn(1, 2 * offset_groups * 9, height // 8 + 1, width // 8 + 1, generator=g)
    offset = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    offset += 0.3 * torch.randn(offset.shape, generator=g)
    weight = 0.05 * torch.randn(cout, cin, 3, 3, generator=g)
    return x, offset, weight


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("shape", SHAPES, ids=[s[0].replace(" ", "-") for s in SHAPES])
def test_deform_conv2d(benchmark, record_median, shape, provider):
    label, cin, cout, offset_groups, height, width, sizes = shape
    if provider != "torchvision-fp32" and ops.EXTENSION is None:
        pytest.skip("needs the compiled extension")
    x, offset, weight = _inputs(cin, cout, offset_groups, height, width)
    backend = "torchvision" if provider.startswith("torchvision") else "auto"
    if provider.endswith("-cl"):
        x = x.contiguous(memory_format=torch.channels_last)
        offset = offset.contiguous(memory_format=torch.channels_last)
    if "bf16" in provider:
        x, offset, weight = x.bfloat16(), offset.bfloat16(), weight.bfloat16()

    def step():
        with torch.inference_mode():
            return ops.deform_conv2d(x, offset, weight, None, 1, 1, 1, offset_group_sizes=sizes, backend=backend)

    rounds = 5 if height * width <= 128 * 224 else 3
    out = benchmark.pedantic(step, rounds=rounds, warmup_rounds=1)
    assert out.shape == (1, cout, height, width)
    gmacs = deform_conv2d_macs(x.shape, weight.shape, out.shape) / 1e9
    extra = {"gmacs": gmacs}
    if benchmark.stats is not None:
        extra["gmac_per_s"] = gmacs / benchmark.stats.stats.median
    record_median(benchmark, f"deform_conv2d {label} [1,{cin},{height},{width}]", provider,
                  baseline="torchvision-fp32", **extra)


def cpu_time_table() -> None:
    """Prints single-thread process CPU times (ms, minimum of 5 runs after a warm-up; 3 for the
    larger torchvision runs) of every shape and provider as a Markdown table: on a shared
    machine they repeat far better than 2-thread wall-clock medians."""
    import time

    torch.set_num_threads(1)

    def best_ms(fn, runs):
        fn()
        times = []
        for _ in range(runs):
            start = time.process_time()
            fn()
            times.append(1e3 * (time.process_time() - start))
        return min(times)

    print("| shape | input | torchvision fp32 | ours fp32 NCHW | ours fp32 CL | ours bf16 CL |")
    print("|---|---|---:|---:|---:|---:|")
    for label, cin, cout, offset_groups, height, width, sizes in SHAPES:
        x, offset, weight = _inputs(cin, cout, offset_groups, height, width)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        offset_cl = offset.contiguous(memory_format=torch.channels_last)
        cases = [(x, offset, weight, "torchvision"), (x, offset, weight, "auto"), (x_cl, offset_cl, weight, "auto"),
                 (x_cl.bfloat16(), offset_cl.bfloat16(), weight.bfloat16(), "auto")]
        row = []
        with torch.inference_mode():
            for a, o, w, backend in cases:
                runs = 3 if backend == "torchvision" and height * width > 40000 else 5
                row.append(best_ms(lambda a=a, o=o, w=w, sizes=sizes, backend=backend: ops.deform_conv2d(
                    a, o, w, None, 1, 1, 1, offset_group_sizes=sizes, backend=backend), runs))
        print(f"| {label} | [1,{cin},{height},{width}] | " + " | ".join(f"{v:.1f}" for v in row) + " |", flush=True)


if __name__ == "__main__":
    cpu_time_table()
