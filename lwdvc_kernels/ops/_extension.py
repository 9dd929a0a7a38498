"""Loads the compiled extension, or defines the op schemas in Python when it is absent.

With ``lwdvc_kernels._C`` the schemas, C++ CPU/CUDA kernels and C++ autograd come from C++.
Without it (source checkout, unsupported platform) the schemas of :mod:`registry` are defined
here; ``_register`` then gives them the Python kernels and autograd, so every caller keeps
working, only slower. ``EXTENSION`` is the loaded module or None, ``EXTENSION_ERROR`` the reason
it could not be loaded, ``LIBRARY`` the ``torch.library.Library`` that Python registrations use.
"""
from __future__ import annotations

import torch

from lwdvc_kernels.ops.registry import OPS

EXTENSION = None
EXTENSION_ERROR: str | None = None

try:
    from lwdvc_kernels import _C as EXTENSION  # noqa: N811  (registers torch.ops.lwdvc.*)
except ImportError as exc:  # pragma: no cover - exercised only without a build
    EXTENSION_ERROR = f"{type(exc).__name__}: {exc}"

if EXTENSION is None:
    LIBRARY = torch.library.Library("lwdvc", "DEF")  # noqa: TOR901 - module-level, lives as long as the process
    for _spec in OPS:
        LIBRARY.define(_spec.schema)
else:
    LIBRARY = torch.library.Library("lwdvc", "IMPL")  # noqa: TOR901


def with_cuda_kernels() -> bool:
    """True when the extension was compiled with its CUDA kernels."""
    return bool(EXTENSION is not None and EXTENSION.with_cuda)
