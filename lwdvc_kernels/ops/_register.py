"""Registers the Python side of every op in :mod:`registry`: fake kernels, Python kernels on the
devices without a compiled one, and the Python autograd formula when the extension is absent.

Imported once by ``lwdvc_kernels.ops``, before anything calls an op.
"""
from __future__ import annotations

import importlib

import torch

from lwdvc_kernels.ops._extension import LIBRARY
from lwdvc_kernels.ops.registry import OPS

DISPATCH_KEYS = {"cpu": "CPU", "cuda": "CUDA"}


def _register_all() -> None:
    for spec in OPS:
        module = importlib.import_module(spec.module)
        qualname = f"lwdvc::{spec.name}"
        torch.library.register_fake(qualname, getattr(module, f"{spec.name}_fake"), lib=LIBRARY)
        for device in spec.devices:
            key = DISPATCH_KEYS[device]
            if not torch._C._dispatch_has_kernel_for_dispatch_key(qualname, key):
                LIBRARY.impl(spec.name, getattr(module, f"{spec.name}_kernel"), key)
        if spec.differentiable and not torch._C._dispatch_has_kernel_for_dispatch_key(qualname, "Autograd"):
            torch.library.register_autograd(qualname, getattr(module, f"{spec.name}_gradient"),
                                            setup_context=getattr(module, f"{spec.name}_setup_context"),
                                            lib=LIBRARY)


_register_all()
