"""Apply group keep-masks to a model: zero the producers (masked model) or slice every member."""
from __future__ import annotations

import torch
from torch import nn

from lwdvc_kernels.compaction.groups import ChannelAnalysis
from lwdvc_kernels.compaction.layer_rules import split_param
from lwdvc_kernels.compaction.module_rules import finalize_module
from lwdvc_kernels.compaction.stored_records import layer_of

__all__ = ["zero_pruned", "slice_pruned", "unit_importance", "get_tensor", "set_tensor", "recompute_hooked_weights"]


def get_tensor(model: nn.Module, module: str, tensor: str) -> torch.Tensor:
    owner = model.get_submodule(module) if module else model
    t = getattr(owner, tensor, None)
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{module or '<root>'}.{tensor} is not a tensor of {type(owner).__name__}")
    return t


def set_tensor(model: nn.Module, module: str, tensor: str, value: torch.Tensor) -> None:
    """Replace a parameter (keeps ``requires_grad``) or buffer of a submodule."""
    owner = model.get_submodule(module) if module else model
    old = getattr(owner, tensor)
    if isinstance(old, nn.Parameter):
        setattr(owner, tensor, nn.Parameter(value.detach().clone(), requires_grad=old.requires_grad))
    elif tensor in owner._buffers:
        owner._buffers[tensor] = value.detach().clone()
    else:
        raise ValueError(f"{module}.{tensor} is neither a parameter nor a buffer")


def _keep_per_key(model, analysis: ChannelAnalysis, masks: dict[str, torch.Tensor], roles=None):
    keep: dict[tuple[str, str, int], torch.Tensor] = {}
    for group in analysis.groups:
        mask = masks[group.name]
        for m in group.members:
            if roles is not None and m.role not in roles:
                continue
            key = (m.module, m.tensor, m.dim)
            if key not in keep:
                keep[key] = torch.ones(get_tensor(model, m.module, m.tensor).shape[m.dim], dtype=torch.bool)
            keep[key][m.positions] = mask[m.units]
    return keep


@torch.no_grad()
def zero_pruned(model: nn.Module, analysis: ChannelAnalysis, masks: dict[str, torch.Tensor]) -> None:
    """Masked-model semantics in place: zero the pruned channels of every producer tensor."""
    for (module, tensor, dim), keep in _keep_per_key(model, analysis, masks, ("producer",)).items():
        t = get_tensor(model, module, tensor)
        drop = (~keep).nonzero().flatten().to(t.device)
        if drop.numel():
            t.index_fill_(dim, drop, 0)


@torch.no_grad()
def slice_pruned(model: nn.Module, analysis: ChannelAnalysis, masks: dict[str, torch.Tensor]) -> None:
    """Physically remove pruned channels from every member tensor, then fix layer attributes."""
    per_tensor: dict[tuple[str, str], dict[int, torch.Tensor]] = {}
    for (module, tensor, dim), keep in _keep_per_key(model, analysis, masks).items():
        per_tensor.setdefault((module, tensor), {})[dim] = keep.nonzero().flatten()
    norms = {id(r): _norm_except(get_tensor(model, *split_param(r.v)), r.dim) for r in analysis.rescales}
    kept_by_owner: dict[str, dict[tuple[str, int], torch.Tensor]] = {}
    for (module, tensor), dims in per_tensor.items():
        t = get_tensor(model, module, tensor)
        new = t
        for dim, index in dims.items():
            new = new.index_select(dim, index.to(t.device))
            layer, attr = layer_of(module, tensor)
            kept_by_owner.setdefault(layer, {})[(attr, dim)] = index
        set_tensor(model, module, tensor, new)
    for r in analysis.rescales:
        _rescale(model, r, per_tensor, norms[id(r)])
    recompute_hooked_weights(model)
    for module, kept in kept_by_owner.items():
        finalize_module(model.get_submodule(module) if module else model, kept, analysis.handlers)


def _norm_except(t: torch.Tensor, dim: int) -> torch.Tensor:
    """L2 norm over every dim but ``dim`` (keepdim), in float64."""
    return torch.linalg.vector_norm(t.detach().double(), 2, dim=[k for k in range(t.dim()) if k != dim], keepdim=True)


def _rescale(model: nn.Module, r, per_tensor, full_norm: torch.Tensor) -> None:
    """Weight-norm repair: ``g *= ||v_kept|| / ||v||`` along ``r.dim``, so ``g * v / ||v||``
    keeps its values on the kept positions after ``v`` lost some of its other positions."""
    v_owner, v_attr = split_param(r.v)
    index = per_tensor.get((v_owner, v_attr), {}).get(r.dim)
    if index is not None:
        full_norm = full_norm.index_select(r.dim, index.to(full_norm.device))
    v = get_tensor(model, v_owner, v_attr)
    g_owner, g_attr = split_param(r.g)
    g = get_tensor(model, g_owner, g_attr)
    ratio = (_norm_except(v, r.dim) / full_norm).to(g.dtype)
    set_tensor(model, g_owner, g_attr, g * ratio.reshape(g.shape))


def recompute_hooked_weights(model: nn.Module) -> None:
    """Weights that a forward pre-hook computes (``torch.nn.utils.weight_norm``'s ``weight`` from
    ``weight_g`` and ``weight_v``) are computed again, without gradients: after slicing, so that
    the layer's attributes can be repaired from their shapes, and before a deep copy (a weight
    computed with gradients cannot be deep-copied; the next forward pass computes it anyway)."""
    from torch.nn.utils.weight_norm import WeightNorm

    with torch.no_grad():
        for module in model.modules():
            for hook in list(module._forward_pre_hooks.values()):
                if isinstance(hook, WeightNorm):
                    hook(module, None)


def _norm_sq_per_position(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Squared L2 norm of every slice of ``t`` along ``dim`` (float32 [t.size(dim)])."""
    try:
        from lwdvc_kernels.ops import channel_norm

        return channel_norm(t.detach().float(), dim) ** 2
    except (ImportError, RuntimeError):
        moved = t.detach().double().movedim(dim, 0).reshape(t.shape[dim], -1)
        return (moved * moved).sum(1).float()


def unit_importance(model: nn.Module, analysis: ChannelAnalysis, name: str) -> torch.Tensor:
    """Importance of every channel of group ``name``: L2 norm of all producer weights writing it.

    Returns:
        float32 [group.size] on the CPU.
    """
    group = analysis[name]
    total = torch.zeros(group.size, dtype=torch.float32)
    for m in group.producers():
        t = get_tensor(model, m.module, m.tensor)
        sq = _norm_sq_per_position(t, m.dim).cpu()[m.positions]
        total.index_add_(0, m.units, sq)
    return total.sqrt()
