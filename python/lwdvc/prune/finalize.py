"""Turn a fine-tuned masked model into a physically smaller one."""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

import lwdvc_kernels
from lwdvc_kernels.masking import detach_masks

__all__ = ["finalize", "module_macs"]


def module_macs(module: nn.Module, example_inputs: Any) -> int:
    """``lwdvc_kernels.count_macs`` on one module's example inputs (tensor, tuple or kwargs dict)."""
    if isinstance(example_inputs, dict):
        return lwdvc_kernels.count_macs(module, **example_inputs)
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    return lwdvc_kernels.count_macs(module, *example_inputs)


def finalize(pruner, *, round_to: int | None = None, verify: bool = True, rtol: float = 1e-5,
             return_report: bool = False) -> nn.Module | tuple[nn.Module, dict[str, Any]]:
    """Compact every pruned module and return a copy of the model with them swapped in.

    Each module of ``pruner.scope`` goes through ``lwdvc_kernels.compact(module, example_inputs,
    round_to=round_to, verify=verify)`` (which checks the compacted module against the masked
    one and raises ``CompactionMismatch`` otherwise). ``pruner.model`` is left untouched (still
    masked), so fine-tuning may continue.

    Args:
        pruner: a :class:`lwdvc.prune.Pruner`.
        round_to: kept channels per group rounded up to multiples of this (hardware-friendly);
            default the pruner's own ``round_to`` (whose masks are already multiples of it).
        verify: compare masked and compacted outputs on random inputs.
        rtol: relative tolerance of the comparison.
        return_report: also return MACs of the compacted modules.

    Returns:
        The compacted model (no mask parametrizations anywhere), and with ``return_report``
        ``{"dense_macs", "macs", "mac_reduction", "modules": {name: (dense, compacted)}, "round_to"}``
        counted with ``lwdvc_kernels.count_macs`` on the pruner's example inputs.
    """
    round_to = pruner.round_to if round_to is None else round_to
    compacted = {}
    for name, (_, module) in pruner.scope.items():
        compacted[name] = lwdvc_kernels.compact(module, pruner.example_inputs[name], round_to=round_to,
                                                verify=verify, rtol=rtol)
    if any(qualname == "" for qualname, _ in pruner.scope.values()):
        if len(pruner.scope) != 1:
            raise ValueError("the model itself and some of its submodules are both pruned")
        result = next(iter(compacted.values()))
    else:
        result = copy.deepcopy(pruner.model)
        detach_masks(result, apply=True)
        for name, (qualname, _) in pruner.scope.items():
            parent_name, _, attr = qualname.rpartition(".")
            parent = result.get_submodule(parent_name) if parent_name else result
            setattr(parent, attr, compacted[name])
    if not return_report:
        return result
    per_module = {}
    for name in pruner.scope:
        dense = pruner.analyses[name].dense_macs
        per_module[name] = (dense, module_macs(compacted[name], pruner.example_inputs[name]))
    dense_total = sum(d for d, _ in per_module.values())
    macs = sum(c for _, c in per_module.values())
    report = {"dense_macs": dense_total, "macs": macs, "mac_reduction": 1.0 - macs / dense_total,
              "modules": per_module, "round_to": round_to}
    return result, report
