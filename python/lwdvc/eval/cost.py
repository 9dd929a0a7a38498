"""Decoder cost of a live model: MACs per frame, parameters and measured decoding latency."""
from __future__ import annotations

import os
import statistics
import time

import torch
from torch import nn

from lwdvc.errors import BadArgumentError
from lwdvc_kernels import count_macs

__all__ = ["decoder_cost", "decoder_macs_live", "decoder_latency", "count_parameters"]

# Modules that run only for the first P-frame after an I-frame (left out of per-frame totals).
_OCCASIONAL = {"feature_adaptor_I"}


def count_parameters(modules) -> int:
    """Parameters of a module or of every module in a dict."""
    if isinstance(modules, nn.Module):
        modules = {"": modules}
    return sum(p.numel() for m in modules.values() for p in m.parameters())


def decoder_macs_live(model: nn.Module, height: int, width: int) -> dict[str, int]:
    """MACs of each decoder module of ``model`` (as built, e.g. compacted) for a padded frame.

    Uses ``model.decoder_modules()`` and ``model.decoder_example_inputs(height, width)``; flow
    warps are added from ``model.warp_shapes`` when the model has them.
    """
    examples = model.decoder_example_inputs(height, width)
    result = {name: int(count_macs(module, *examples[name])) for name, module in model.decoder_modules().items()}
    if hasattr(model, "warp_shapes"):
        from lwdvc.models.layers import FlowWarp

        warp = FlowWarp()
        result["flow_warp"] = sum(
            int(count_macs(warp, torch.empty((1, *shape), device="meta"),
                           torch.empty((1, 2, *shape[1:]), device="meta")))
            for shape in model.warp_shapes(height, width))
    return result


@torch.no_grad()
def decoder_latency(model: nn.Module, height: int, width: int, repeats: int = 10, warmup: int = 2,
                    threads: int | None = None) -> dict[str, float]:
    """Median wall time of running every per-frame decoder module once on its example inputs.

    Args:
        model: a codec with ``decoder_modules()`` / ``decoder_example_inputs()``.
        height, width: padded frame size (multiples of 64).
        repeats: timed runs (the median is reported).
        warmup: untimed runs first.
        threads: torch threads while timing (default: all cores); restored afterwards.

    Returns:
        ``{"median_ms", "min_ms", "repeats", "threads"}``.
    """
    if repeats < 1:
        raise BadArgumentError(f"repeats must be >= 1, got {repeats}")
    modules = {k: m for k, m in model.decoder_modules().items() if k not in _OCCASIONAL}
    examples = model.decoder_example_inputs(height, width)
    threads = threads or os.cpu_count() or 1
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    was_training = model.training
    model.eval()
    try:
        times = []
        for run in range(warmup + repeats):
            start = time.perf_counter()
            for name, module in modules.items():
                module(*examples[name])
            if run >= warmup:
                times.append((time.perf_counter() - start) * 1000.0)
    finally:
        torch.set_num_threads(previous)
        model.train(was_training)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "repeats": repeats, "threads": threads}


def decoder_cost(model: nn.Module, height: int, width: int, repeats: int = 10,
                 macs_of: nn.Module | None = None) -> dict:
    """MACs (per module and per P-frame total), decoder parameters and latency of ``model``.

    ``macs_of``: count MACs and parameters on this model instead (e.g. the source of an optimised
    decoder, whose fused ops do the same arithmetic); latency is always measured on ``model``.
    """
    counted = model if macs_of is None else macs_of
    per_module = decoder_macs_live(counted, height, width)
    total = sum(v for k, v in per_module.items() if k not in _OCCASIONAL)
    return {"height": height, "width": width, "macs_per_module": per_module, "macs": total,
            "parameters": count_parameters(counted.decoder_modules()),
            "latency": decoder_latency(model, height, width, repeats=repeats)}
