"""Every Triton kernel of ``lwdvc_kernels/ops/triton`` compiled on CUDA tensors, against its reference.

Each case runs an op's ``backend="triton"`` path on CUDA tensors (random, non-zero inputs) and
the plain PyTorch reference of ``lwdvc_kernels/ops/reference`` on float64 copies of the same
(dtype-rounded) inputs on the CPU; the outputs must agree within the output dtype's tolerance
(``|got - want| <= atol + rtol * |want|`` everywhere, no NaN where the reference has none).
Kernels covered: ``_scale_channels_kernel`` (masked_weight forward, masked_weight_backward,
masked_weights), ``_channel_sumsq_kernel`` (channel_norm), ``_conv2d_epilogue_kernel``
(conv2d_epilogue: bias, ReLU / LeakyReLU, residual, PixelShuffle store, stride, dilation,
groups) and ``_gdn_kernel`` (GDN and IGDN), each in float32, float16 and bfloat16.

Refuses to run under ``TRITON_INTERPRET`` (the point is the compiled kernels) or without a CUDA
device. ``python -m benchmarks.gpu_triton --out FILE [--deadline-s S]`` appends one JSON line per
case as it finishes and stops starting cases once ``S`` seconds have passed.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

# (atol, rtol) of an output of this dtype against the float64 reference: about two roundings of
# the output dtype, plus float32 accumulation over the reductions below.
TOLERANCE = {torch.float32: (1e-4, 1e-4), torch.float16: (2e-3, 2e-3), torch.bfloat16: (1.6e-2, 1.6e-2)}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def compare(got: torch.Tensor, want: torch.Tensor) -> dict:
    """Max errors of ``got`` (any device, its dtype sets the tolerance) against float64 ``want``."""
    atol, rtol = TOLERANCE[got.dtype]
    g, w = got.detach().double().cpu(), want.detach().double().cpu()
    if g.shape != w.shape:
        return {"passed": False, "error": f"shape {tuple(g.shape)} != reference {tuple(w.shape)}"}
    diff = (g - w).abs()
    nan_mismatch = bool((g.isnan() & ~w.isnan()).any())
    diff = diff.nan_to_num(nan=float("inf"))  # a NaN where the reference has a number counts as infinitely off
    diff[g.isnan() & w.isnan()] = 0.0
    scale = float(w.abs().nan_to_num(nan=0.0).max()) or 1.0
    worst = float((diff / (atol + rtol * w.abs().nan_to_num(nan=0.0))).max()) if diff.numel() else 0.0
    max_abs = float(diff.max()) if diff.numel() else 0.0
    return {"passed": not nan_mismatch and worst <= 1.0, "max_abs_error": max_abs,
            "max_error_vs_max_abs": max_abs / scale, "worst_vs_tolerance": worst,
            "atol": atol, "rtol": rtol, "nan_mismatch": nan_mismatch}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mask(n: int, g: torch.Generator) -> torch.Tensor:
    """Float 0/1 mask [n] with kept and pruned entries."""
    mask = (torch.rand(n, generator=g) < 0.6).float()
    mask[0], mask[-1] = 1.0, 0.0
    return mask


def _rounded(shape, dtype, g, scale=1.0) -> torch.Tensor:
    """randn in ``dtype`` (non-zero almost surely), on the CPU."""
    return (torch.randn(*shape, generator=g) * scale).to(dtype)


def masked_weight_case(dtype: torch.dtype) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """masked_weight and its gradient-decay backward: weight [64, 48, 3, 3], mask along dim 1, beta 0.25."""
    from lwdvc_kernels import ops
    from lwdvc_kernels.ops.reference.masked_weight import masked_weight_backward, masked_weight_forward

    g = _gen(1)
    weight, grad, mask = _rounded((64, 48, 3, 3), dtype, g), _rounded((64, 48, 3, 3), dtype, g), _mask(48, g)
    w = weight.cuda().requires_grad_(True)
    out = ops.masked_weight(w, mask.cuda(), 0.25, 1, backend="triton")
    out.backward(grad.cuda())
    return [("forward", out, masked_weight_forward(weight.double(), mask.double(), 1)),
            ("backward", w.grad, masked_weight_backward(grad.double(), mask.double(), 0.25, 1))]


def masked_weights_case(dtype: torch.dtype) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """masked_weights over [32, 16, 3, 3] (dim 0), [16, 24, 5, 5] (dim 1) and [40, 7] (dim 1)."""
    from lwdvc_kernels import ops
    from lwdvc_kernels.ops.reference.masked_weight import masked_weight_forward

    g = _gen(2)
    shapes, dims = [(32, 16, 3, 3), (16, 24, 5, 5), (40, 7)], [0, 1, 1]
    weights = [_rounded(s, dtype, g) for s in shapes]
    masks = [_mask(s[d], g) for s, d in zip(shapes, dims)]
    outs = ops.masked_weights([w.cuda() for w in weights], [m.cuda() for m in masks], 0.25, dims, backend="triton")
    return [(f"weight{k}", out, masked_weight_forward(w.double(), m.double(), d))
            for k, (out, w, m, d) in enumerate(zip(outs, weights, masks, dims))]


def channel_norm_case(dtype: torch.dtype) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """channel_norm of [96, 40, 3, 3] (dim 0) and [24, 96] (dim 1) coupled; float32 [96] out (the
    reference sums in float64 and rounds to float32 once, as the kernel does)."""
    from lwdvc_kernels import ops
    from lwdvc_kernels.ops.reference.channel_norm import channel_norm_reference

    g = _gen(3)
    weights, dims = [_rounded((96, 40, 3, 3), dtype, g), _rounded((24, 96), dtype, g)], [0, 1]
    got = ops.channel_norm([w.cuda() for w in weights], dims, backend="triton")
    return [("norm", got, channel_norm_reference([w.double() for w in weights], dims))]


# (label, input [N, Cin, H, W], Cout, kernel, stride, padding, dilation, groups, activation, upscale,
#  bias, residual)
CONV_CONFIGS = (
    ("3x3 relu bias residual", (2, 24, 33, 40), 20, 3, 1, 1, 1, 1, "relu", 1, True, True),
    ("3x3 leaky shuffle x2 groups 2", (1, 32, 17, 29), 48, 3, 1, 1, 1, 2, "leaky_relu", 2, True, True),
    ("5x5 stride 2 dilation 2", (1, 13, 37, 31), 7, 5, 2, 4, 2, 1, "none", 1, False, False),
    ("1x1 odd channels", (2, 67, 9, 11), 35, 1, 1, 0, 1, 1, "none", 1, True, False),
)


def conv2d_epilogue_case(dtype: torch.dtype) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """conv2d_epilogue over ``CONV_CONFIGS``."""
    from lwdvc_kernels import ops
    from lwdvc_kernels.ops.reference.conv2d_epilogue import conv2d_epilogue_reference

    g = _gen(4)
    results = []
    for label, shape, cout, k, stride, padding, dilation, groups, act, upscale, has_bias, has_res in CONV_CONFIGS:
        n, cin, h, w = shape
        x = _rounded(shape, dtype, g)
        weight = _rounded((cout, cin // groups, k, k), dtype, g, scale=(cin // groups * k * k) ** -0.5)
        bias = _rounded((cout,), dtype, g) if has_bias else None
        out_h = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
        out_w = (w + 2 * padding - dilation * (k - 1) - 1) // stride + 1
        residual = _rounded((n, cout // upscale**2, out_h * upscale, out_w * upscale), dtype, g) if has_res else None
        kw = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups, "activation": act,
              "negative_slope": 0.1, "upscale": upscale}

        def cuda(t):
            return None if t is None else t.cuda()

        def double(t):
            return None if t is None else t.double()

        got = ops.conv2d_epilogue(x.cuda(), weight.cuda(), cuda(bias), cuda(residual), backend="triton", **kw)
        want = conv2d_epilogue_reference(x.double(), weight.double(), double(bias), double(residual), [stride] * 2,
                                         [padding] * 2, [dilation] * 2, groups, act, 0.1, upscale)
        results.append((label, got, want))
    return results


def gdn_case(dtype: torch.dtype) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """GDN and IGDN, 64 and 130 channels, input [1, C, 19, 37]; beta in [0.5, 1.5], gamma in [0, 0.1)."""
    from lwdvc_kernels import ops
    from lwdvc_kernels.ops.reference.gdn import gdn_reference

    g = _gen(5)
    results = []
    for channels in (64, 130):
        x = _rounded((1, channels, 19, 37), dtype, g)
        beta = (0.5 + torch.rand(channels, generator=g)).to(dtype)
        gamma = (0.1 * torch.rand(channels, channels, generator=g)).to(dtype)
        for inverse in (False, True):
            got = ops.gdn(x.cuda(), beta.cuda(), gamma.cuda(), inverse, backend="triton")
            want = gdn_reference(x.double(), beta.double(), gamma.double(), inverse)
            results.append((f"{'IGDN' if inverse else 'GDN'} C={channels}", got, want))
    return results


CASES: dict[str, Callable[[torch.dtype], list]] = {
    "masked_weight": masked_weight_case,
    "masked_weights": masked_weights_case,
    "channel_norm": channel_norm_case,
    "conv2d_epilogue": conv2d_epilogue_case,
    "gdn": gdn_case,
}


def run_case(op: str, dt: str) -> dict:
    """One op in one dtype: ``{"op", "dtype", "passed", "checks": [{name, max errors...}]}``."""
    start = time.perf_counter()
    try:
        checks = [{"name": name, **compare(got, want)} for name, got, want in CASES[op](DTYPES[dt])]
        torch.cuda.synchronize()
        row = {"passed": all(c["passed"] for c in checks), "checks": checks}
    except Exception as exc:  # a kernel that does not compile or run is a failed case, not a crash
        row = {"passed": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
    return {"kind": "triton", "op": op, "dtype": dt, **row, "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_triton")
    parser.add_argument("--out", type=Path, required=True, help="JSON lines file to append results to")
    parser.add_argument("--deadline-s", type=float, default=float("inf"), help="start no case after this")
    args = parser.parse_args(argv)
    start = time.monotonic()

    def emit(record: dict) -> None:
        with args.out.open("a") as f:
            f.write(json.dumps(record) + "\n")

    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        emit({"kind": "triton-setup", "error": "TRITON_INTERPRET is set: the kernels would not be compiled"})
        return 1
    if not torch.cuda.is_available():
        emit({"kind": "triton-setup", "error": "no CUDA device"})
        return 1
    import triton

    emit({"kind": "triton-setup", "triton": triton.__version__, "interpreted": False})
    for op in CASES:
        for dt in DTYPES:
            if time.monotonic() - start > args.deadline_s:
                emit({"kind": "triton-stopped", "at": f"{op} {dt}"})
                return 0
            emit(run_case(op, dt))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
