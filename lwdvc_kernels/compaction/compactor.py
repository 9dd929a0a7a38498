"""``channel_groups`` and ``compact``: the public entry points of the compaction engine."""
from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from lwdvc_kernels.compaction import function_rules
from lwdvc_kernels.compaction.groups import ChannelAnalysis, build_analysis
from lwdvc_kernels.compaction.module_rules import module_rules_with
from lwdvc_kernels.compaction.slicing import recompute_hooked_weights, slice_pruned, unit_importance, zero_pruned
from lwdvc_kernels.compaction.trace import Tracer, module_modes, restore_modes
from lwdvc_kernels.compaction.verify import compare_outputs
from lwdvc_kernels.masking import detach_masks, has_masks, masks_of

__all__ = ["channel_groups", "compact", "round_masks", "rounded_count", "set_memory_format"]


def channel_groups(module: nn.Module, example_inputs: Any, handlers=None) -> ChannelAnalysis:
    """Find the channel groups of ``module`` by running it once on ``example_inputs``.

    Args:
        module: any module (masks attached through :mod:`lwdvc_kernels.masking` are fine).
        example_inputs: one tensor, a tuple of positional inputs, or a dict of keyword inputs.
            Small spatial sizes suffice; MACs in the result refer to these inputs.
        handlers: ``{module type: ModuleHandler}`` for layers the engine does not know, for this
            call only (on top of the registered ones; see docs/ADDING_A_LAYER.md).

    The module runs once in eval mode without gradients; its train/eval flags and buffers
    (BatchNorm statistics, counters) are left as they were.

    Returns:
        A :class:`ChannelAnalysis` with ``groups``, ``macs(kept)`` and ``dense_macs``.

    Raises:
        UnsupportedOpError: an op or layer with channel-carrying inputs that no rule describes
            (the message names the op and the module it ran in).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"channel_groups expects an nn.Module, got {type(module).__name__}")
    rules = module_rules_with(handlers)
    tracer = Tracer(module, rules, function_rules)
    tracer.run(example_inputs)
    analysis = build_analysis(tracer.g)
    analysis.handlers = rules
    return analysis


def rounded_count(kept: int, size: int, round_to: int) -> int:
    """The channel count :func:`round_masks` leaves a group of ``size`` that keeps ``kept``:
    rounded up to a multiple of ``round_to``, at least ``round_to``, at most ``size``."""
    return min(size, max(round_to, math.ceil(kept / round_to) * round_to))


def round_masks(
    model: nn.Module, analysis: ChannelAnalysis, masks: dict[str, torch.Tensor], round_to: int
) -> dict[str, torch.Tensor]:
    """Keep at least ``round_to`` channels per group and multiples of ``round_to`` (capped at
    the group size) by restoring the most important pruned channels (L2 norm of producers)."""
    if not isinstance(round_to, int) or round_to < 1:
        raise ValueError(f"round_to must be a positive int, got {round_to!r}")
    rounded = {}
    for group in analysis.groups:
        mask = masks[group.name].clone()
        kept = int(mask.sum())
        target = rounded_count(kept, group.size, round_to)
        if target > kept:
            score = unit_importance(model, analysis, group.name)
            score[mask] = -math.inf
            restore = torch.topk(score, target - kept).indices
            mask[restore] = True
        rounded[group.name] = mask
    return rounded


def keep_a_channel_of_every_layer(
    model: nn.Module, analysis: ChannelAnalysis, masks: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Restore, in every group, the most important channel of each tensor that would lose all of
    its channels of that group (e.g. the branch of a concatenation whose channels are all pruned
    while the other part keeps some): a layer with zero output or input channels cannot run.

    Args:
        masks: ``{group name: bool keep-mask}`` for every group (not modified).

    Returns:
        New masks, equal to ``masks`` except for the restored channels.
    """
    result = {}
    for group in analysis.groups:
        mask = masks[group.name].clone()
        score = None
        for member in group.members:
            if member.units.numel() and not bool(mask[member.units].any()):
                if score is None:
                    score = unit_importance(model, analysis, group.name)
                mask[member.units[torch.argmax(score[member.units])]] = True
        result[group.name] = mask
    return result


def set_memory_format(model: nn.Module, memory_format: torch.memory_format) -> nn.Module:
    """Store every 4-D parameter and buffer of ``model`` in ``memory_format``, in place.

    Args:
        model: any module.
        memory_format: ``torch.channels_last`` or ``torch.contiguous_format``.

    Returns:
        ``model``.
    """
    if memory_format not in (torch.channels_last, torch.contiguous_format):
        raise ValueError(f"memory_format must be torch.channels_last or torch.contiguous_format, got {memory_format!r}")
    with torch.no_grad():
        for module in model.modules():
            for items in (module._parameters, module._buffers):
                for name, t in items.items():
                    if t is not None and t.dim() == 4 and not t.is_contiguous(memory_format=memory_format):
                        moved = t.contiguous(memory_format=memory_format)
                        items[name] = nn.Parameter(moved, t.requires_grad) if isinstance(t, nn.Parameter) else moved
    return model


def compact(
    model: nn.Module,
    example_inputs: Any = None,
    *,
    masks: dict[str, torch.Tensor] | None = None,
    round_to: int = 1,
    verify: bool = True,
    rtol: float = 1e-5,
    return_masks: bool = False,
    memory_format: torch.memory_format = torch.channels_last,
    handlers=None,
) -> nn.Module | tuple[nn.Module, dict[str, torch.Tensor]]:
    """Return a physically smaller copy of ``model`` without its pruned channels.

    Args:
        model: a masked model (``MaskedWeight`` parametrizations attached) or a plain model with
            ``masks``. It is not modified (a weight that a forward pre-hook computes, as in
            ``torch.nn.utils.weight_norm``, is computed again without gradients: same values).
        example_inputs: inputs for the trace and the verification (shapes only are reused for
            verification; values are random). Required.
        masks: ``{group name: bool keep-mask [group.size]}``; overrides the attached masks of the
            groups it names; groups named nowhere are kept whole.
        round_to: keep at least this many channels per group and round kept counts up to
            multiples of it (never above the group size), restoring the most important channels.
        verify: run the masked model (with restored channels unmasked) and the compacted model
            on the same random inputs and raise :class:`CompactionMismatch` if they differ.
        rtol: relative tolerance of the verification (of each output's norm).
        return_masks: also return the final ``{group name: bool keep-mask}`` (after rounding,
            and after restoring one channel of any layer that would lose all of its channels).
        memory_format: layout of the compacted model's 4-D parameters and buffers.
            ``torch.channels_last`` (default) makes its 2-D convolutions run channels-last (NHWC)
            whatever the layout of the input, which handles the irregular channel counts of a
            pruned model far better than NCHW on CPU (see docs/results/compact.md); outputs
            then come back channels-last (same values). ``torch.contiguous_format`` keeps NCHW.
        handlers: ``{module type: ModuleHandler}`` for layers the engine does not know, for this
            call only (as in :func:`channel_groups`; their ``finalize`` repairs the sliced layers).

    The trace and the verification run in eval mode on private copies: ``model`` is not
    changed, and the returned module's buffers (sliced) and train/eval flags are ``model``'s.

    Returns:
        A new module: smaller weights, biases, norms, GDN parameters; no mask parametrizations
        (a layer's own parametrizations, e.g. weight norm, stay, on sliced stored tensors), and
        the final keep-masks when ``return_masks``.
    """
    if example_inputs is None:
        raise ValueError("compact needs example_inputs to trace the model (small sizes suffice)")
    modes = module_modes(model)
    recompute_hooked_weights(model)
    work = copy.deepcopy(model)
    attached = masks_of(work) if has_masks(work) else {}
    detach_masks(work, apply=False)
    analysis = channel_groups(work, example_inputs, handlers=handlers)
    requested = {**attached, **(masks or {})}
    unprunable = [n for n in requested if n in {g.name for g in analysis.groups} and not analysis[n].prunable]
    for name in unprunable:
        if not bool(requested[name].all()):
            raise ValueError(f"group {name!r} is not prunable ({analysis[name].reasons[0]})")
    keep = analysis.keep_masks(requested)
    keep = keep_a_channel_of_every_layer(work, analysis, round_masks(work, analysis, keep, round_to))
    reference = copy.deepcopy(work) if verify else None
    slice_pruned(work, analysis, keep)
    set_memory_format(work, memory_format)
    if reference is not None:
        zero_pruned(reference, analysis, keep)
        compare_outputs(reference, work, example_inputs, rtol=rtol)
    restore_modes(work, modes)
    return (work, keep) if return_masks else work
