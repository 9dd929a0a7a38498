"""One fine-tuning step of DCVC-sized decoder modules: gd-masked (with the per-step mask update)
against the same dense step. Target: masked / dense <= 1.2.
The mask update (importance of every channel + exact MAC budget) runs inside the timed step.

Run: ``python -m pytest benchmarks/test_bench_prune.py --benchmark-only``.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from lwdvc.models import build
from lwdvc.prune import Pruner

MODULES = ("mvDecoder_part1", "mvDecoder_part2", "contextualDecoder_part1", "contextualDecoder_part2")
FRAME = 128


class DecoderStep(nn.Module):
    """The motion and contextual decoders of a full-width DCVC; loss = sum of output means."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        codec = build("dcvc")
        self.parts = nn.ModuleDict({name: codec.decoder_modules()[name] for name in MODULES})
        examples = codec.decoder_example_inputs(FRAME, FRAME)
        self.inputs = {name: examples[name] for name in MODULES}
        small = codec.decoder_example_inputs(64, 64)
        self.small_inputs = {name: small[name] for name in MODULES}

    def forward(self) -> torch.Tensor:
        return sum(self.parts[name](*self.inputs[name]).square().mean() for name in MODULES)


@pytest.mark.parametrize("provider", ["dense", "gd-masked", "gd-masked-update10"])
def test_prune_training_step(benchmark, record_median, provider):
    """``gd-masked`` recomputes the masks every step, ``gd-masked-update10`` every 10 steps."""
    model = DecoderStep()
    pruner = None
    if provider != "dense":
        pruner = Pruner(model, {n: model.parts[n] for n in MODULES}, model.small_inputs,
                        target_mac_reduction=0.65, mode="gd", total_steps=100, ramp_steps=0,
                        update_every=10 if provider.endswith("update10") else 1)
        for _ in range(50):  # beta about 0.5: pruned weights get a decayed gradient
            pruner.step()
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)

    def step():
        if pruner is not None:
            pruner.step()
        loss = model()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    loss = benchmark.pedantic(step, rounds=7, warmup_rounds=1)
    assert torch.isfinite(loss)
    extra = {}
    if pruner is not None:
        extra = {"mac_reduction": pruner.mac_reduction(), "beta": pruner.beta}
    record_median(benchmark, f"prune train step DCVC decoders {FRAME}x{FRAME}", provider,
                  baseline="dense", **extra)
