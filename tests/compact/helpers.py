"""Shared test helpers: random keep-masks that reach a MAC reduction target."""
from __future__ import annotations

import torch
from torch import nn

from lwdvc_kernels.compaction import ChannelAnalysis


def masks_for_reduction(analysis: ChannelAnalysis, reduction: float, seed: int) -> dict[str, torch.Tensor]:
    """Random keep-masks removing free channels in random order until the MACs fall to
    ``(1 - reduction) * dense`` (binary search over the prefix length); every group keeps one."""
    gen = torch.Generator().manual_seed(seed)
    candidates = []
    for g in analysis.prunable:
        free = (~g.fixed).nonzero().flatten()
        keep_one = (free[torch.randint(len(free), (1,), generator=gen)]
                    if bool(g.fixed.all()) is False and int(g.fixed.sum()) == 0 else None)
        for unit in free.tolist():
            if keep_one is None or unit != int(keep_one):
                candidates.append((g.name, unit))
    order = torch.randperm(len(candidates), generator=gen).tolist()
    candidates = [candidates[i] for i in order]
    target = (1.0 - reduction) * analysis.dense_macs

    def masks_of_prefix(k: int) -> dict[str, torch.Tensor]:
        masks = {g.name: torch.ones(g.size, dtype=torch.bool) for g in analysis.prunable}
        for name, unit in candidates[:k]:
            masks[name][unit] = False
        return masks

    lo, hi = 0, len(candidates)
    while lo < hi:
        mid = (lo + hi) // 2
        if analysis.macs(masks_of_prefix(mid)) <= target:
            hi = mid
        else:
            lo = mid + 1
    return masks_of_prefix(lo)


def randomized(model: nn.Module, seed: int) -> nn.Module:
    """Random weights in place, never zeros: GDN's stored beta/gamma positive (its norm stays
    positive), norm gains near 1, BatchNorm statistics non-trivial; returns the model in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.copy_(0.3 + 0.5 * torch.rand(p.shape, generator=gen))
            elif name.endswith(("norm1.weight", "norm2.weight", "norm.weight", "norm_out.weight")):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / max(1, p[0].numel()) ** 0.5)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))
    return model.eval()
