"""Golden-reference helpers shared by the model tests: the deterministic weight fill and the
reference files of /work/shared/reference (see its README for how they were made).
"""
from __future__ import annotations

import json
import math
import os
import re
import zlib
from pathlib import Path

import pytest
import torch
from torch import nn

REFERENCE_DIR = Path(os.environ.get("LWDVC_REFERENCE_DIR", "/work/shared/reference"))

# Special fill rules per codec: (regular expression on the key, rule of u ~ U[0, 1) float64).
SPECIAL_RULES: dict[str, list[tuple[str, callable]]] = {
    "dcvc": [(r"\.beta$", lambda u: 0.5 + u), (r"\.gamma$", lambda u: 0.1 * u)],
    "dcvc_hem": [(r"^(mv_y_q_basic|mv_y_q_scale|y_q_basic|y_q_scale)$", lambda u: 0.5 + u)],
    "dcvc_hem_intra": [(r"^(q_basic|q_scale)$", lambda u: 0.5 + u)],
    "fvc": [],
}

# Tolerance: the normwise relative error max|ours - official| / max|official| must stay
# <= 1e-5 in float32. Where deep stacks need it, the README's elementwise rtol 1e-4 / atol 1e-5
# applies instead (float32 summation order differs between implementations and tens of
# layers amplify last-bit differences); tests say which one they use.
REL_TOL = 1e-5
RTOL = 1e-4
ATOL = 1e-5


def fill_deterministic(model: nn.Module, codec: str) -> nn.Module:
    """Fill every floating-point parameter of ``model`` as the reference README describes.

    Buffers are left as the constructor built them. ``codec`` selects the special rules
    ("dcvc", "dcvc_hem", "dcvc_hem_intra" or "fvc").
    """
    rules = [(re.compile(pattern), rule) for pattern, rule in SPECIAL_RULES[codec]]
    buffers = {name for name, _ in model.named_buffers()}
    with torch.no_grad():
        for name, tensor in model.state_dict(keep_vars=True).items():
            if name in buffers or not tensor.is_floating_point():
                continue
            generator = torch.Generator()
            generator.manual_seed(zlib.crc32(name.encode()))
            u = torch.rand(tensor.shape, generator=generator, dtype=torch.float64)
            rule = next((rule for pattern, rule in rules if pattern.search(name)), None)
            if rule is not None:
                value = rule(u)
            elif tensor.dim() >= 2:
                value = (u - 0.5) * 2 / math.sqrt(max(1, tensor.numel() // tensor.shape[0]))
            else:
                value = (u - 0.5) * 0.2
            tensor.copy_(value.to(tensor.dtype))
    return model


def reference_path(filename: str) -> Path:
    """Path of a reference file; skips the test when the reference data is not present."""
    path = REFERENCE_DIR / filename
    if not path.is_file():
        pytest.skip(f"reference file {path} not available")
    return path


def load_reference(filename: str) -> dict:
    """``{'inputs', 'outputs', 'meta'}`` of a golden ``*_reference.pt`` file."""
    return torch.load(reference_path(filename), map_location="cpu", weights_only=True)


def load_state_dict_spec(filename: str) -> dict:
    """The JSON description of an official state_dict."""
    with open(reference_path(filename)) as handle:
        return json.load(handle)


def reference_meta_keys(filename: str, prefix: str = "", exclude: tuple[str, ...] = ()) -> list[str]:
    """Keys of ``meta`` that describe stored cases (for pytest parametrisation at collection).

    Returns an empty list when the file is missing, so collection never fails.
    """
    path = REFERENCE_DIR / filename
    if not path.is_file():
        return []
    meta = torch.load(path, map_location="cpu", weights_only=True)["meta"]
    return [key for key, value in meta.items()
            if isinstance(value, dict) and key.startswith(prefix)
            and not any(key.startswith(e) for e in exclude)]


def outputs_for(outputs: dict[str, torch.Tensor], key: str) -> dict[str, torch.Tensor]:
    """Stored outputs of case ``key``: ``key`` itself, ``key.0``, ``key.1``, ... or ``key.<name>``."""
    return {name: value for name, value in outputs.items()
            if name == key or name.startswith(key + ".")}


def assert_close(actual: torch.Tensor, expected: torch.Tensor, name: str,
                 rel: float | None = REL_TOL) -> None:
    """Check ``actual`` against a golden tensor.

    With ``rel`` set: normwise relative error ``max|a - e| / max|e| <= rel``. With ``rel=None``:
    the README's elementwise ``rtol=1e-4, atol=1e-5``.
    """
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"{name}: dtype {actual.dtype} != {expected.dtype}"
    if rel is None:
        torch.testing.assert_close(actual, expected, rtol=RTOL, atol=ATOL,
                                   msg=lambda m: f"{name}: {m}")
        return
    scale = expected.abs().max().item()
    error = (actual - expected).abs().max().item()
    assert error <= rel * max(scale, 1e-30), (
        f"{name}: max abs error {error:.3e} exceeds {rel:g} x max|expected| ({scale:.3e})")
