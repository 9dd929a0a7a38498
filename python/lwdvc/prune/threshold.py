"""Learnable per-group thresholds with a sigmoid sparsity proxy (``Pruner(selection="threshold")``).

Every pruned channel group g has one learnable threshold ``t_g`` (an ``nn.Parameter``) on the
per-group normalised channel importances ``s_i`` (mean 1 per group, see
:mod:`lwdvc.prune.importance`):

* hard mask: ``m_i = 1[s_i > t_g]``, then the group's protected channels (fixed channels, the
  floor's most important free channels, every producing layer's best free channels) are kept
  and the kept count is rounded up to a multiple of ``round_to`` with the next most important
  channels, so no group is ever emptied;
* proxy: ``p_g = 1 - mean_i sigmoid((s_i - t_g) / tau)`` (fixed channels count as kept), and
  ``proxy = sum_g cost_g * size_g * p_g / dense_macs`` - each group weighted by its dense
  marginal MAC cost, i.e. the first-order MAC reduction the soft masks would give;
* loss: ``lambda2 * (proxy - target(t))^2``.

Importances are detached: the thresholds receive their gradient through the proxy only (the
hard masks pass none), and the proxy passes none to the weights.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from lwdvc.prune.budget import PrunedGroup
from lwdvc.prune.scope import PruneConfigError
from lwdvc_kernels.compaction import rounded_count

__all__ = ["ThresholdSelector", "protected_channels", "check_threshold_options", "standardise_per_group"]


def standardise_per_group(norms: torch.Tensor) -> torch.Tensor:
    """``(n_i - mean) / std`` of a group's channel norms (all zeros if they are all equal).

    The ``threshold`` selection's normalised importance: mean-1 scores (``n_i / mean``) of a
    layer lie within a few percent of 1, far narrower than the proxy's ``tau``; standardised
    scores spread over a few units, on the scale of ``tau``.
    """
    centred = norms - norms.mean()
    std = centred.square().mean().sqrt()
    if not bool(std > 1e-12 * norms.abs().max().clamp_min(1e-30)):
        return torch.zeros_like(norms)
    return centred / std


def protected_channels(g: PrunedGroup, importance: torch.Tensor) -> torch.Tensor:
    """bool [size]: the channels of ``g`` that are never pruned for this ``importance``.

    The fixed channels, the ``min_kept - fixed`` most important free channels and the best
    ``keep`` free channels of every producing layer of the group.
    """
    free = g.free.nonzero().flatten()
    protect = max(0, g.min_kept - int(g.fixed.sum()))
    ranked = free[torch.argsort(importance[free], descending=True, stable=True)]
    protected = g.fixed.clone()
    protected[ranked[:protect]] = True
    for units, keep in g.layers:
        protected[units[torch.argsort(importance[units], descending=True, stable=True)[:keep]]] = True
    return protected


class ThresholdSelector(nn.Module):
    """The thresholds of the pruned groups, their hard masks and the differentiable proxy.

    Args:
        groups: the pruner's groups (their ``cost`` weights the proxy).
        dense_macs: the dense MACs of the pruned scope (the proxy's denominator).
        tau: sigmoid temperature of the proxy.
        lambda2: weight of the proxy loss.
        init: initial value of every threshold (0 keeps every channel with a non-zero norm).
        round_to: kept channels per group rounded up to a multiple of this.
    """

    def __init__(self, groups: list[PrunedGroup], dense_macs: int, *, tau: float, lambda2: float,
                 init: float, round_to: int) -> None:
        super().__init__()
        self.groups = groups
        self.tau, self.lambda2, self.round_to = float(tau), float(lambda2), int(round_to)
        self.thresholds = nn.ParameterList(
            [nn.Parameter(torch.tensor(float(init))) for _ in groups])
        self.weights = [g.cost * g.size / dense_macs for g in groups]

    @torch.no_grad()
    def masks(self, importances: list[torch.Tensor]) -> list[torch.Tensor]:
        """bool [size] keep-masks of every group for its normalised ``importances`` (CPU)."""
        out = []
        for g, s, t in zip(self.groups, importances, self.thresholds):
            keep = (s > float(t.detach())) | protected_channels(g, s)
            count = int(keep.sum())
            need = rounded_count(count, g.size, self.round_to) - count
            if need > 0:  # round up with the most important pruned channels
                pruned = (~keep).nonzero().flatten()
                keep[pruned[torch.argsort(s[pruned], descending=True, stable=True)[:need]]] = True
            out.append(keep)
        return out

    def group_proxies(self, importances: list[torch.Tensor]) -> list[torch.Tensor]:
        """``p_g = 1 - mean_i sigmoid((s_i - t_g) / tau)`` per group (fixed channels: 1 in the mean)."""
        out = []
        for g, s, t in zip(self.groups, importances, self.thresholds):
            s = s.to(t.device, t.dtype)
            soft = torch.sigmoid((s - t) / self.tau)
            fixed = g.fixed.to(t.device)
            keep = torch.where(fixed, torch.ones_like(soft), soft)
            out.append(1.0 - keep.mean())
        return out

    def proxy(self, importances: list[torch.Tensor]) -> torch.Tensor:
        """The MAC-weighted proxy: ``sum_g cost_g * size_g * p_g / dense_macs`` (differentiable in t)."""
        parts = self.group_proxies(importances)
        return sum(w * p for w, p in zip(self.weights, parts))

    def loss(self, importances: list[torch.Tensor], target: float) -> torch.Tensor:
        """``lambda2 * (proxy - target)^2``."""
        return self.lambda2 * (self.proxy(importances) - float(target)).square()


def check_threshold_options(tau, lambda2, init) -> None:
    """Raise ``PruneConfigError`` for a non-positive ``tau``, a negative ``lambda2`` or a non-finite ``init``."""
    for label, value in (("threshold_tau", tau), ("threshold_lambda", lambda2), ("threshold_init", init)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise PruneConfigError(f"{label} must be a finite number, got {value!r}")
    if tau <= 0:
        raise PruneConfigError(f"threshold_tau must be > 0, got {tau!r}")
    if lambda2 < 0:
        raise PruneConfigError(f"threshold_lambda must be >= 0, got {lambda2!r}")
