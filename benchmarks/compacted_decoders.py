"""Dense and compacted decoders of the codecs at a MAC reduction, for the optimisation benchmarks.

Pruning masks here are synthetic (no training): every prunable channel group keeps about the
same fraction of its channels, jittered per group (x0.8 to x1.2) so that kept counts are as
irregular as a trained pruner leaves them (e.g. 64 -> 23), and the fraction is searched so that
the whole decoder loses ``reduction`` of its MACs - after rounding kept counts up to multiples
of ``round_to``, so decoders with and without rounding are compared at the same MAC reduction.
Which channels go is random; latency depends on the counts, not on which channels they are.

``masks="floor"`` builds the other shape a trained pruner leaves (docs/results/demo.md): whole
groups cut to the pruner's floor (``ceil(0.1 * free channels)`` plus fixed ones, e.g. 64 -> 7)
and the others left whole, groups chosen in a random order until the MAC reduction is reached,
the last one cut only as far as needed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

import lwdvc_kernels
from lwdvc_kernels.compaction import ChannelAnalysis, channel_groups, rounded_count


@dataclass
class DecoderModule:
    """One decoder module: dense, compacted, inputs at the benchmark frame size and its MACs.

    ``small_inputs`` are the trace-size inputs the compaction used (enough for ``optimize``).
    """

    name: str
    dense: nn.Module
    compacted: nn.Module
    inputs: tuple[torch.Tensor, ...]
    small_inputs: tuple[torch.Tensor, ...]
    dense_macs: int
    compacted_macs: int


def _counts(analysis: ChannelAnalysis, keep: float, jitter: torch.Tensor, round_to: int) -> dict[str, int]:
    counts = {}
    for i, g in enumerate(analysis.prunable):
        n_fixed = int(g.fixed.sum())
        floor = n_fixed + max(1, (g.size - n_fixed) // 8)  # never empties one producer of a group
        fraction = min(1.0, max(0.0, keep * float(jitter[i])))
        count = max(floor, min(g.size, round(g.size * fraction)))
        counts[g.name] = rounded_count(count, g.size, round_to)  # as compact rounds
    return counts


def _random_masks(analysis: ChannelAnalysis, counts: dict[str, int], gen: torch.Generator) -> dict[str, torch.Tensor]:
    masks = {}
    for name, count in counts.items():
        g = analysis[name]
        mask = g.fixed.clone()
        free = (~g.fixed).nonzero().flatten()
        need = count - int(mask.sum())
        if need > 0:
            mask[free[torch.randperm(len(free), generator=gen)[:need]]] = True
        masks[name] = mask
    return masks


def _floor_counts(analyses: list[ChannelAnalysis], reduction: float, gen: torch.Generator
                  ) -> list[dict[str, int]]:
    """Per analysis ``{group: kept count}``: groups at the pruner's floor or whole (see module doc)."""
    target = (1.0 - reduction) * sum(a.dense_macs for a in analyses)
    counts: list[dict[str, int]] = [{} for _ in analyses]

    def total() -> int:
        return sum(a.macs(c) for a, c in zip(analyses, counts))

    candidates = [(i, g) for i, a in enumerate(analyses) for g in a.prunable]
    for k in torch.randperm(len(candidates), generator=gen).tolist():
        i, g = candidates[k]
        n_fixed = int(g.fixed.sum())
        floor = n_fixed + max(1, math.ceil(0.1 * (g.size - n_fixed)))
        counts[i][g.name] = floor
        if total() <= target:
            lo, hi = floor, g.size  # the largest count of this last group that still meets the target
            while lo < hi:
                mid = (lo + hi + 1) // 2
                counts[i][g.name] = mid
                lo, hi = (mid, hi) if total() <= target else (lo, mid - 1)
            counts[i][g.name] = lo
            for a, c in zip(analyses, counts):
                for group in a.prunable:
                    c.setdefault(group.name, group.size)
            return counts
    raise ValueError(f"floor masks cannot remove {reduction:.0%} of the MACs")


def _keep_fraction(analyses: list[ChannelAnalysis], jitters: list[torch.Tensor], reduction: float,
                   round_to: int) -> float:
    """Largest common keep fraction whose decoder-wide MACs (counts rounded up to multiples of
    ``round_to``) stay within ``1 - reduction`` of dense."""
    target = (1.0 - reduction) * sum(a.dense_macs for a in analyses)
    lo, hi = 0.0, 1.0
    for _ in range(30):  # bisection
        mid = (lo + hi) / 2
        macs = sum(a.macs(_counts(a, mid, j, round_to)) for a, j in zip(analyses, jitters))
        if macs > target:
            hi = mid
        else:
            lo = mid
    return lo


def build_decoder(codec: str, height: int, width: int, reduction: float = 0.65, round_to: int = 1,
                  seed: int = 0, trace_size: tuple[int, int] = (128, 192),
                  memory_format: torch.memory_format = torch.channels_last, masks: str = "uniform"
                  ) -> list[DecoderModule]:
    """Every decoder module of ``codec`` (dense and compacted) with inputs for ``height`` x ``width``.

    One keep fraction for the whole decoder (modules without prunable channels, e.g. a lone
    deformable conv, stay dense, so the others lose more) gives ``reduction`` of the decoder's
    MACs. Channel groups and the budget are computed at ``trace_size`` (the compacted model does
    not depend on the frame size); MACs are then counted at ``height`` x ``width``.
    ``memory_format`` is the compacted modules' layout (``compact``'s argument); the dense
    modules and the inputs stay as the codec makes them (NCHW). ``masks``: ``"uniform"`` (one
    jittered keep fraction) or ``"floor"`` (groups at the floor or whole; ``round_to`` then 1).
    """
    if masks not in ("uniform", "floor"):
        raise ValueError(f"masks must be 'uniform' or 'floor', got {masks!r}")
    from lwdvc.models import build

    torch.manual_seed(seed)
    model = build(codec).eval()
    small = model.decoder_example_inputs(*trace_size)
    examples = model.decoder_example_inputs(height, width)
    modules = model.decoder_modules()
    analyses = [channel_groups(m, tuple(small[name])) for name, m in modules.items()]
    gen = torch.Generator().manual_seed(seed)
    jitters = [0.8 + 0.4 * torch.rand(len(a.prunable), generator=gen) for a in analyses]
    if masks == "floor":
        counts = _floor_counts(analyses, reduction, gen)
    else:
        keep = _keep_fraction(analyses, jitters, reduction, round_to)
        counts = [_counts(a, keep, j, round_to) for a, j in zip(analyses, jitters)]
    out = []
    for (name, module), analysis, count in zip(modules.items(), analyses, counts):
        small_inputs, inputs = tuple(small[name]), tuple(examples[name])
        keep_masks = _random_masks(analysis, count, gen)
        compacted = lwdvc_kernels.compact(module, small_inputs, masks=keep_masks, round_to=round_to, verify=False,
                                           memory_format=memory_format).eval()
        dense_macs = lwdvc_kernels.count_macs(module, *inputs)
        kept_macs = lwdvc_kernels.count_macs(compacted, *inputs)
        out.append(DecoderModule(name, module.eval(), compacted, inputs, small_inputs, dense_macs, kept_macs))
    return out


def mac_ratio(modules: list[DecoderModule]) -> float:
    """Dense MACs / compacted MACs of the whole decoder."""
    return sum(m.dense_macs for m in modules) / max(1, sum(m.compacted_macs for m in modules))


def geometric_mean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))
