"""One teacher training step (DCVC-HEM at width 0.25, the shipped teachers' size): float32
against bfloat16 autocast (``lwdvc train --precision bfloat16``), timed in turns in one process.

Stages: ``intra`` (crop 128, batch 8) and ``inter`` (I-frame + 2 P-frames, crop 128, batch 4),
forward + backward + Adam step. The two losses on the same batch are checked to agree within 2%.

Run: ``PYTHONPATH=python:. python -m pytest benchmarks/test_bench_train_precision.py --benchmark-only``.
"""
from __future__ import annotations

import pytest
import torch

from benchmarks.interleaved import interleaved_medians
from lwdvc.models import VideoCodec
from lwdvc.train.objective import RDObjective

CASES = {"intra": (8, 1), "inter": (4, 3)}
CROP = 128


def _step(objective: RDObjective, optimizer, group: torch.Tensor, rate: torch.Tensor, precision: str):
    def run() -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            out = objective(group, rate)
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        optimizer.step()
        return float(out["loss"].detach())
    return run


@pytest.mark.parametrize("stage", list(CASES))
def test_train_step_precision(benchmark, record_median, stage):
    batch, frames = CASES[stage]
    torch.manual_seed(0)
    group = torch.rand(batch, frames, 3, CROP, CROP)
    rate = torch.arange(batch) % 4
    steps, losses = {}, {}
    for precision in ("float32", "bfloat16"):
        torch.manual_seed(1)
        codec = VideoCodec("dcvc_hem", width=0.25)
        objective = RDObjective(codec, [85.0, 170.0, 380.0, 840.0], stage).train()
        optimizer = torch.optim.Adam([p for p in codec.parameters() if p.requires_grad], lr=1e-6)
        steps[precision] = _step(objective, optimizer, group, rate, precision)
        torch.manual_seed(2)
        losses[precision] = steps[precision]()
    assert losses["bfloat16"] == pytest.approx(losses["float32"], rel=0.02)
    benchmark.group = f"train step {stage} dcvc_hem w0.25 crop {CROP}"
    medians = benchmark.pedantic(interleaved_medians, args=(steps, 3), rounds=1, iterations=1)
    for precision, median in medians.items():
        record_median(benchmark, benchmark.group, precision, baseline="float32", median=median)
