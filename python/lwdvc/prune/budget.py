"""The global, MAC-weighted pruning budget over several traced modules.

Every module gets its own :class:`lwdvc_kernels.compaction.ChannelAnalysis` (one analysis, two users:
the pruner and :func:`lwdvc_kernels.compact`). The decoder's MACs are the sum of the modules'
exact ``analysis.macs(kept)``; the budget is ``1 - macs(kept) / macs(dense)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from lwdvc_kernels.compaction import rounded_count

__all__ = ["PrunedGroup", "MacBudget", "producer_layer_floors"]


@dataclass
class PrunedGroup:
    """One prunable channel group of one module, as the pruner sees it.

    Attributes:
        key: ``"<module name>/<group name>"``, unique over the pruned scope.
        module: name of the traced module (key of the pruner's module dict).
        name: group name inside that module's analysis.
        size: channels of the group.
        fixed: bool [size], channels that must always be kept.
        min_kept: the fewest channels the group may keep (fixed ones included, >= 1).
        cost: MACs one channel takes away from the dense decoder (the group's marginal cost).
        mask: the float 0/1 [size] mask shared by the group's MaskedWeight parametrizations.
        layers: ``[(free units long [k], keep)]`` per producing layer of the group that has free
            channels: the pruner always keeps the ``keep`` (>= 1) most important of that layer's
            free channels, so no producing layer loses all of its own channels (a group that
            joins fixed channels with a layer's output through a concat could otherwise empty it).
    """

    key: str
    module: str
    name: str
    size: int
    fixed: torch.Tensor
    min_kept: int
    cost: float
    mask: torch.Tensor | None = None
    layers: list[tuple[torch.Tensor, int]] = field(default_factory=list)

    @property
    def free(self) -> torch.Tensor:
        return ~self.fixed


def producer_layer_floors(group, min_keep: float) -> list[tuple[torch.Tensor, int]]:
    """``[(free units, keep)]`` of every producing layer of ``group`` with free channels.

    Args:
        group: a :class:`lwdvc_kernels.compaction.ChannelGroup`.
        min_keep: fraction of each layer's free channels that is always kept (at least one).

    Returns:
        Per producing layer (in member order): its free group units (long [k], ascending) and
        ``max(1, ceil(min_keep * k))``.
    """
    by_layer: dict[str, list[torch.Tensor]] = {}
    for member in group.members:
        if member.role == "producer":
            by_layer.setdefault(member.module, []).append(member.units)
    out = []
    for parts in by_layer.values():
        units = torch.cat(parts).unique()
        units = units[~group.fixed[units]]
        if units.numel():
            out.append((units, max(1, math.ceil(min_keep * units.numel()))))
    return out


def _keep_back(flat: torch.Tensor, pruned: list[tuple[int, int]], groups: list[PrunedGroup],
               offsets: torch.Tensor, round_to: int) -> None:
    """Set back to kept, per group, the last-pruned channels of ``pruned`` (in order) until the
    group's kept count is :func:`rounded_count` of it. ``flat``: bool [sum of sizes], in place."""
    short = {}
    for gi, g in enumerate(groups):
        kept = int(flat[offsets[gi]: offsets[gi] + g.size].sum())
        if kept < g.size:
            need = rounded_count(kept, g.size, round_to) - kept
            if need > 0:
                short[gi] = need
    for gi, ch in reversed(pruned):
        if short.get(gi, 0) > 0:
            flat[offsets[gi] + ch] = True
            short[gi] -= 1


class MacBudget:
    """Exact MACs of a set of modules for given keep-masks.

    Args:
        analyses: ``{module name: ChannelAnalysis}``.
    """

    def __init__(self, analyses: dict) -> None:
        self.analyses = dict(analyses)
        self.dense_macs = int(sum(a.dense_macs for a in self.analyses.values()))
        if self.dense_macs <= 0:
            raise ValueError("the pruned modules have no MACs on their example inputs")

    def macs(self, kept: dict[str, dict[str, torch.Tensor | int]]) -> int:
        """Total MACs with ``kept = {module: {group: bool mask | count}}`` (missing = dense)."""
        return int(sum(a.macs(kept.get(name, {})) for name, a in self.analyses.items()))

    def reduction(self, kept: dict[str, dict[str, torch.Tensor | int]]) -> float:
        """Fraction of the dense MACs removed: ``1 - macs(kept) / dense``."""
        return 1.0 - self.macs(kept) / self.dense_macs

    def marginal_cost(self, module: str, group: str) -> float:
        """MACs saved by removing one channel of ``group`` from the dense ``module``."""
        analysis = self.analyses[module]
        size = analysis[group].size
        return float(analysis.dense_macs - analysis.macs({group: size - 1}))

    def pruned_groups(self, min_keep: float) -> list[PrunedGroup]:
        """Every prunable group with its fixed channels, floor and marginal cost.

        Args:
            min_keep: fraction of each group's channels that stays (at least one channel), and
                of each producing layer's free channels (at least one free channel per layer).
        """
        groups = []
        for module, analysis in self.analyses.items():
            for g in analysis.prunable:
                layers = producer_layer_floors(g, min_keep)
                # floor with the lowest-index free units of every layer protected (the pruner
                # protects the most important ones; overlapping layers share them)
                protected = torch.zeros(g.size, dtype=torch.bool)
                for units, keep in layers:
                    protected[units[:keep]] = True
                floor = max(1, math.ceil(min_keep * g.size), int((g.fixed | protected).sum()))
                if floor >= g.size:
                    continue
                groups.append(PrunedGroup(f"{module}/{g.name}", module, g.name, g.size,
                                          g.fixed.clone(), floor, self.marginal_cost(module, g.name),
                                          layers=layers))
        return groups

    def max_reduction(self, groups: list[PrunedGroup], round_to: int = 1) -> float:
        """Reduction with every group at its floor (fixed channels first, as counts), the floor
        rounded up to a multiple of ``round_to``."""
        kept: dict[str, dict[str, int]] = {}
        for g in groups:
            kept.setdefault(g.module, {})[g.name] = rounded_count(g.min_kept, g.size, round_to)
        return self.reduction(kept)

    def select(self, groups: list[PrunedGroup], order: list[tuple[int, int]], target: float,
               fill_tolerance: float = 0.002, round_to: int = 1) -> tuple[dict[str, dict[str, torch.Tensor]], float]:
        """Prune the shortest prefix of ``order`` whose removal reaches ``target``.

        Args:
            groups: the pruned groups.
            order: candidate (group index, channel) pairs, least valuable first.
            target: MAC reduction to reach (0 keeps everything).
            fill_tolerance: when the shortest prefix overshoots ``target`` by more than this (one
                expensive channel), cheaper later candidates are tried instead of it (only
                with ``round_to`` 1).
            round_to: every group keeps a multiple of this many channels (capped at its size):
                of the channels a prefix prunes in a group, the last ones in ``order`` (its most
                valuable pruned channels) are kept back until the count is a multiple; the
                reduction is that of the rounded masks, i.e. what ``compact(round_to=...)``
                of them gives.

        Returns:
            (``{module: {group: bool keep-mask}}``, its exact reduction, at least ``target``
            or within one channel's cost below it after the fill). If the whole order does not
            reach ``target``, all of it is pruned.
        """
        if not isinstance(round_to, int) or round_to < 1:
            raise ValueError(f"round_to must be a positive int, got {round_to!r}")
        sizes = [g.size for g in groups]
        offsets = torch.tensor([0] + sizes[:-1]).cumsum(0)
        flat_order = (offsets[torch.tensor([gi for gi, _ in order], dtype=torch.long)]
                      + torch.tensor([ch for _, ch in order], dtype=torch.long)) if order else None

        def masks_for(k: int) -> dict[str, dict[str, torch.Tensor]]:
            flat = torch.ones(sum(sizes), dtype=torch.bool)
            if k > 0:
                flat[flat_order[:k]] = False
                if round_to > 1:
                    _keep_back(flat, order[:k], groups, offsets, round_to)
            out: dict[str, dict[str, torch.Tensor]] = {}
            for g, m in zip(groups, flat.split(sizes)):
                out.setdefault(g.module, {})[g.name] = m.clone()
            return out

        if target <= 0 or not order:
            kept = masks_for(0)
            return kept, self.reduction(kept)
        lo, hi = 0, len(order)  # reduction(prefix) is monotone in the prefix length
        cache: dict[int, float] = {}

        def red(k: int) -> float:
            if k not in cache:
                cache[k] = self.reduction(masks_for(k))
            return cache[k]

        if red(hi) < target:
            return masks_for(hi), red(hi)
        while lo < hi:
            mid = (lo + hi) // 2
            if red(mid) >= target:
                hi = mid
            else:
                lo = mid + 1
        if red(lo) - target <= fill_tolerance or lo == 0 or round_to > 1:
            return masks_for(lo), red(lo)
        return self._fill(groups, order, lo, target, masks_for(lo), red(lo), masks_for(lo - 1))

    def _fill(self, groups, order, k, target, best, best_red, start, limit: int = 256):
        """The channel that crossed ``target`` overshot it: starting from the prefix before it,
        add later candidates (in order, at most ``limit`` tried) while they bring the reduction
        closer to ``target``; keep whichever of the two is closer."""
        current = {m: {n: t.clone() for n, t in d.items()} for m, d in start.items()}
        current_red = self.reduction(current)
        for gi, ch in order[k: k + limit]:
            g = groups[gi]
            mask = current[g.module][g.name]
            mask[ch] = False
            red = self.reduction(current)
            if abs(red - target) < abs(current_red - target):
                current_red = red
                if red >= target:
                    break
            else:
                mask[ch] = True
        if abs(current_red - target) < abs(best_red - target):
            return current, current_red
        return best, best_red
