"""lwdvc_kernels: a model-agnostic engine that makes channel-pruned decoders physically small and fast.

Public API:
    ops.masked_weight, ops.channel_norm   custom ops (``torch.ops.lwdvc.*``) with reference,
                                          C++ CPU, CUDA and Triton backends
    channel_groups(module, example_inputs) channel-coupling analysis of any traceable module
    compact(model, example_inputs, ...)   physically remove pruned channels, verified exact
    count_macs(module, *inputs)           MACs including transposed convs and sampling ops
    save(model, path) / load(path)        compacted models without pickled code
    optimize(model, example_inputs, ...)  fused, channels_last (optionally bf16) inference modules
"""
from __future__ import annotations

import importlib

from lwdvc_kernels import ops
from lwdvc_kernels.compaction import channel_groups, compact

__all__ = ["ops", "channel_groups", "compact", "count_macs", "save", "load", "MaskedWeight", "optimize"]

# Heavier subsystems are imported on first use so `import lwdvc_kernels` stays cheap.
_LAZY = {
    "count_macs": ("lwdvc_kernels.macs", "count_macs"),
    "save": ("lwdvc_kernels.serialize", "save"),
    "load": ("lwdvc_kernels.serialize", "load"),
    "MaskedWeight": ("lwdvc_kernels.masking", "MaskedWeight"),
    "optimize": ("lwdvc_kernels.optimization", "optimize"),
}


def __getattr__(name: str):
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lwdvc_kernels' has no attribute {name!r}")
