"""Shared helpers of the op tests: backends, tolerances and random inputs."""
from __future__ import annotations

import pytest
import torch

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# (atol, rtol) of a result computed in `dtype` against a float64 oracle.
TOLERANCE = {
    torch.float64: (1e-12, 1e-12),
    torch.float32: (1e-6, 1e-6),
    torch.float16: (1e-3, 1e-3),
    torch.bfloat16: (1e-2, 1e-2),
}

HAS_CUDA = torch.cuda.is_available()


def needs_cuda(test):
    """Decorator: marks ``test`` ``cuda`` (``pytest -m cuda`` selects it) and skips it without a CUDA device."""
    return pytest.mark.cuda(pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")(test))


def triton_usable() -> bool:
    """Triton kernels run on a GPU, or on CPU tensors under TRITON_INTERPRET=1."""
    import os

    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return HAS_CUDA or os.environ.get("TRITON_INTERPRET") == "1"


needs_triton = pytest.mark.skipif(not triton_usable(), reason="triton needs a GPU or TRITON_INTERPRET=1")

# What a direct torch.ops.lwdvc.* call raises for arguments its kernel cannot run on: the C++
# preconditions raise RuntimeError, the Python kernels (no extension) the functional API's errors.
DIRECT_OP_ERRORS = (RuntimeError, ValueError, TypeError, IndexError)
# Bad arguments that would make a kernel read out of bounds (wrong lengths, dims, dtypes): a
# direct op call rejects them too. The others (beta, empty tensors) only the functional API.
UNSAFE_FOR_KERNELS = ("mask-length", "mask-2d", "mask-int", "dim-high", "dim-low", "dim", "int-weight",
                      "scalar-weight", "masks-count", "dims-count", "mask-device", "weight-device")

BACKENDS = [
    pytest.param("auto", id="dispatcher"),
    pytest.param("reference", id="reference"),
    pytest.param("triton", id="triton", marks=needs_triton),
]


def random_mask(n: int, generator: torch.Generator, keep: float = 0.6) -> torch.Tensor:
    """Float 0/1 mask with at least one kept and one pruned entry when n >= 2."""
    mask = (torch.rand(n, generator=generator) < keep).float()
    if n >= 2:
        mask[0], mask[-1] = 1.0, 0.0
    return mask


def fractional_mask(n: int, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Mask of values in (0, 1), none 0 or 1, most not exact in float32 (when ``dtype`` is
    float64): what a soft mask looks like, and what tells a float64 factor from a float32 one."""
    return (0.01 + 0.98 * torch.rand(n, dtype=torch.float64, generator=generator)).to(dtype)


def non_contiguous(t: torch.Tensor) -> torch.Tensor:
    """Same values as ``t`` with non-contiguous strides (a transposed copy, transposed back)."""
    if t.dim() < 2:
        return torch.stack([t, t], dim=-1)[..., 0]
    return t.transpose(0, -1).contiguous().transpose(0, -1)


def masked_weight_oracle(weight, mask, beta, dim, grad):
    """masked_weight's forward and gradient-decay backward in float64 (dim already wrapped)."""
    shape = [1] * weight.dim()
    shape[dim] = -1
    m = mask.double().view(shape)
    return weight.double() * m, grad.double() * (m + beta * (1 - m))


def run_without_extension(script: str) -> None:
    """Runs ``script`` in a fresh interpreter that cannot import ``lwdvc_kernels._C`` (the script
    blocks it first) and fails the test with its stderr unless it exits 0."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root / "python"), str(root)]))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
