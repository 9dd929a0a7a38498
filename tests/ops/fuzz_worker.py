"""The worker process of ``test_fuzz_ops.py``: reads ``[[op, case], ...]`` as JSON on stdin,
builds each case's tensors, runs the fake kernel, the raw op and the reference, and prints one
JSON line per case (``{"accepted": whether the fake kernel took the arguments, "fail": why, if it
failed}``) as soon as it is done, so that the parent sees which case a crash stopped at.
"""
from __future__ import annotations

import json
import sys

# Refusals of the eager op where the fake kernel accepts, by design: kernels with fewer dtypes (or
# instruction sets) than the op, whose functional API sends the other calls elsewhere.
EAGER_ONLY_LIMITS = {
    "deform_conv2d": "the CPU kernel supports float32 and bfloat16",  # ops.deform_conv2d routes others to torchvision
    "conv2d_narrow": "needs a CPU with AVX-512",
}
TOLERANCE = {"float64": 1e-9, "float32": 1e-4, "float16": 2e-2, "bfloat16": 8e-2}


def _build(desc):
    import torch

    if isinstance(desc, list):
        return [_build(d) for d in desc]
    if not (isinstance(desc, dict) and "t" in desc):
        return getattr(torch, desc) if desc in ("float32", "float64", "bfloat16", "int32") else desc
    shape, dtype = desc["t"], getattr(torch, desc["dtype"])
    g = torch.Generator().manual_seed(desc["seed"])
    layout = desc["layout"]
    full = list(shape)
    if layout == "strided" and full:
        full[-1] = full[-1] * 2
    values = torch.randn(full, generator=g, dtype=torch.float64)
    fill = desc["fill"]
    if fill == "zeros":
        values.zero_()
    elif fill.startswith("binary"):
        values = (values > 0).double()
    elif fill == "large":
        # products stay within the dtype's range: overflow to inf would depend on the summation order
        values *= 10.0 if dtype == torch.float16 else 1e6
    if desc.get("abs"):
        values.abs_()
    if fill.endswith(("nan", "inf")) and values.numel():
        spots = torch.rand(values.shape, generator=g) < 0.1
        spots.view(-1)[0] = True
        values[spots] = float("nan") if fill.endswith("nan") else float("inf")
    if dtype == torch.bool:
        t = values > 0
    elif not dtype.is_floating_point:
        t = values.nan_to_num(0.0, 0.0, 0.0).clamp(-100, 100).to(dtype)
    else:
        t = values.to(dtype)
    if layout == "strided" and shape:
        t = t[..., ::2]
    elif layout == "channels_last" and t.dim() == 4:
        t = t.contiguous(memory_format=torch.channels_last)
    elif layout == "transposed" and t.dim() >= 2:
        t = t.transpose(0, -1).contiguous().transpose(0, -1)
    return t


def _outcome(fn):
    try:
        return True, fn()
    except Exception as error:  # noqa: BLE001  (judged by _check_error)
        return False, error


def _flat(out):
    import torch

    return [out] if isinstance(out, torch.Tensor) else list(out)


def _check_error(where, error):
    allowed = (ValueError, TypeError, IndexError, RuntimeError)
    if not isinstance(error, allowed) or not str(error).strip():
        return f"{where} raised {type(error).__name__} {str(error)[:300]!r}"
    return None


def _compare(got, want):
    import torch

    if got.shape != want.shape or got.dtype != want.dtype:
        return f"eager {tuple(got.shape)} {got.dtype} but reference {tuple(want.shape)} {want.dtype}"
    if not got.dtype.is_floating_point:
        return None if torch.equal(got, want) else "values differ"
    if not torch.equal(got.isnan(), want.isnan()):
        return f"NaN at other positions: eager {int(got.isnan().sum())}, reference {int(want.isnan().sum())}"
    g, w = got.double(), want.double()
    finite = torch.isfinite(w) & torch.isfinite(g)
    if not torch.equal(torch.isinf(g) & ~finite, torch.isinf(w) & ~finite) or not torch.equal(g[~finite & ~g.isnan()],
                                                                                           w[~finite & ~w.isnan()]):
        return "infinities differ"
    tol = TOLERANCE.get(str(got.dtype).replace("torch.", ""), 1e-4)
    scale = max(1.0, float(w[finite].abs().max())) if finite.any() else 1.0
    diff = float((g[finite] - w[finite]).abs().max()) if finite.any() else 0.0
    bound = tol * scale * 4
    return None if diff <= bound else f"max difference {diff:.3g} beyond {bound:.3g}"


def _run_case(op, case):
    import importlib

    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    from lwdvc_kernels.ops.registry import op_spec

    args = _build(case)
    spec = op_spec(op)
    packet = getattr(torch.ops.lwdvc, op)

    def fake_args(mode, value):
        if isinstance(value, torch.Tensor):
            return mode.from_tensor(value)
        if isinstance(value, list):
            return [fake_args(mode, v) for v in value]
        return value

    with FakeTensorMode() as mode:
        fake_ok, fake = _outcome(lambda: packet(*[fake_args(mode, a) for a in args]))
    eager_ok, eager = _outcome(lambda: packet(*args))
    if not fake_ok:
        why = _check_error("the fake kernel", fake)
        if why is None and not eager_ok:
            why = _check_error("the eager op", eager)
        return why, False
    if not eager_ok:
        if op in EAGER_ONLY_LIMITS and EAGER_ONLY_LIMITS[op] in str(eager):
            return None, True
        return f"the fake kernel accepts but the eager op raises {type(eager).__name__}: {str(eager)[:300]}", True
    fakes, eagers = _flat(fake), _flat(eager)
    if [tuple(f.shape) for f in fakes] != [tuple(e.shape) for e in eagers] or \
            [f.dtype for f in fakes] != [e.dtype for e in eagers]:
        return (f"fake {[(tuple(f.shape), f.dtype) for f in fakes]} but eager "
                f"{[(tuple(e.shape), e.dtype) for e in eagers]}"), True
    reference = getattr(importlib.import_module(spec.module), f"{op}_kernel")
    ref_ok, ref = _outcome(lambda: reference(*args))
    if not ref_ok and type(ref).__name__ == "NonFiniteOffsetError":
        return None, True  # torchvision (deform_conv2d's reference) cannot sample at non-finite offsets
    if not ref_ok:
        return f"the reference raises {type(ref).__name__}: {str(ref)[:300]}", True
    for got, want in zip(eagers, _flat(ref)):
        why = _compare(got, want)
        if why is not None:
            return why, True
    return None, True


def _worker():
    import torch

    import lwdvc_kernels.ops  # noqa: F401  (registers the ops)

    torch.set_num_threads(1)
    for op, case in json.loads(sys.stdin.read()):
        try:
            why, accepted = _run_case(op, case)
        except Exception as error:  # noqa: BLE001  (a bug of the harness or an unexpected error type)
            why, accepted = f"unexpected {type(error).__name__}: {str(error)[:300]}", False
        result = {"accepted": accepted}
        if why is not None:
            result["fail"] = why
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    _worker()
