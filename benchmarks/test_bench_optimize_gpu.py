"""GPU decoders: dense eager vs compacted eager vs compacted optimised (CUDA kernels / Triton), fp32,
fp16 and bf16, with ``torch.compile`` of the compacted decoder (fp16, bf16) as the peer.

Skipped without a CUDA device: no GPU speed has been measured for this project yet.
Run: ``pytest benchmarks/test_bench_optimize_gpu.py --benchmark-only`` on a machine with a GPU;
``python -m benchmarks.gpu_check`` times the same decoders at 1920x1088 in one bounded run.
"""
from __future__ import annotations

import pytest
import torch

from benchmarks.optimize_cases import CODECS, FRAMES, decoder, macs, runner

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (GPU speed not measured)")

PROVIDERS = ("dense-eager-fp32", "compacted-eager-fp32", "compacted-opt-fp32", "dense-eager-fp16",
             "compacted-eager-fp16", "compacted-opt-fp16", "dense-eager-bf16", "compacted-eager-bf16",
             "compacted-opt-bf16", "compacted-compile-fp16", "compacted-compile-bf16")
CASES = [(c, f, p) for c in CODECS for f in FRAMES for p in PROVIDERS]


@pytest.mark.parametrize("codec,frame,provider", CASES, ids=[f"{c}-{f[0]}-{p}" for c, f, p in CASES])
def test_decoder_gpu(benchmark, record_median, codec, frame, provider):
    label, height, width = frame
    step = runner(codec, height, width, provider, device="cuda")
    outs = benchmark.pedantic(step, rounds=10, warmup_rounds=2)
    assert len(outs) == len(decoder(codec, height, width))
    kind = provider.split("-")[0]
    record_median(benchmark, f"gpu decoder {codec} {label}", provider, baseline="dense-eager-fp32",
                  gmacs=macs(codec, height, width, kind) / 1e9)
