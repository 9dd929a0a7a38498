"""Whole decoders on CPU: dense eager vs compacted eager vs compacted optimised (65% fewer MACs).

DCVC, DCVC-HEM and FVC decoders, float32 and bfloat16, frames 448x256 and 960x544 (padded to
960x576), all in one run. Extras per row: MAC ratio (dense / compacted), speed-up against the
dense eager float32 decoder, speed-up efficiency (speed-up / MAC ratio), achieved GFLOP/s
against the conv peak measured first in the same run, and for bfloat16 the SNR of every decoder
module's output against float32 (worst module). glibc is told to keep freed memory for all
providers alike (``LWDVC_BENCH_KEEP_MEMORY=0`` turns that off). The six providers of a (codec,
frame) are timed in turns (``interleaved_medians``), so drift of the machine's speed reaches
them alike.
Run: ``pytest benchmarks/test_bench_optimize.py --benchmark-only``.
"""
from __future__ import annotations

import time

import pytest
import torch

from benchmarks.interleaved import interleaved_medians
from benchmarks.optimize_cases import CODECS, FRAMES, configure_process, decoder, macs, runner, snr_db

configure_process()

PROVIDERS = ("dense-eager-fp32", "compacted-eager-fp32", "compacted-opt-fp32",
             "dense-eager-bf16", "compacted-eager-bf16", "compacted-opt-bf16")
CASES = [(c, f) for c in CODECS for f in FRAMES]
_PEAK_GFLOPS: dict[str, float] = {}


def _conv_peak(dtype: torch.dtype) -> float:
    """GFLOP/s of a 3x3 conv, 64 -> 64 channels, channels_last, on a 256x448 map (median of 7)."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(dtype).to(memory_format=torch.channels_last)
    x = torch.randn(1, 64, 256, 448, dtype=dtype).contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode():
        for _ in range(9):
            start = time.perf_counter()
            conv(x)
            times.append(time.perf_counter() - start)
    return 2 * 64 * 64 * 9 * 256 * 448 / sorted(times[2:])[3] / 1e9


@pytest.mark.parametrize("dt", ["fp32", "bf16"])
def test_conv_peak(benchmark, record_median, dt):
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dt]
    gflops = benchmark.pedantic(_conv_peak, args=(dtype,), rounds=3, warmup_rounds=1)
    _PEAK_GFLOPS[dt] = max(_PEAK_GFLOPS.get(dt, 0.0), gflops)
    record_median(benchmark, f"conv peak {dt}", "3x3 64->64 channels_last", baseline="3x3 64->64 channels_last",
                  gflops=_PEAK_GFLOPS[dt])


@pytest.mark.parametrize("codec,frame", CASES, ids=[f"{c}-{f[0]}" for c, f in CASES])
def test_decoder(benchmark, record_median, codec, frame):
    label, height, width = frame
    steps = {provider: runner(codec, height, width, provider) for provider in PROVIDERS}
    rounds = 7 if height * width <= 256 * 448 else 4
    benchmark.group = f"decoder {codec} {label}"
    medians = benchmark.pedantic(interleaved_medians, args=(steps, rounds), rounds=1, iterations=1)
    dense_macs = macs(codec, height, width, "dense")
    reference = steps["compacted-eager-fp32"]()
    assert len(reference) == len(decoder(codec, height, width))
    for provider in PROVIDERS:
        kind, _, dt = provider.split("-")
        median = medians[provider]
        gmacs = macs(codec, height, width, kind) / 1e9
        ratio = dense_macs / (gmacs * 1e9)
        dense = medians["dense-eager-fp32"]
        extra = {"gmacs": gmacs, "mac_ratio": ratio, "speedup_vs_dense_fp32": dense / median,
                 "efficiency": dense / median / ratio, "gflops": 2 * gmacs / median}
        if dt in _PEAK_GFLOPS:
            extra["of_conv_peak"] = extra["gflops"] / _PEAK_GFLOPS[dt]
        if dt == "bf16" and kind == "compacted":
            outs = steps[provider]()
            extra["snr_db_worst"] = min(_output_snr(a, b) for a, b in zip(reference, outs))
            extra["snr_db_last"] = _output_snr(reference[-1], outs[-1])
        record_median(benchmark, f"decoder {codec} {label}", provider, baseline="dense-eager-fp32",
                      median=median, **extra)


def _output_snr(reference, other) -> float:
    ref = reference if isinstance(reference, torch.Tensor) else reference[0]
    got = other if isinstance(other, torch.Tensor) else other[0]
    return snr_db(ref.float(), got.float())
