"""Every CPU instruction-set path against the reference, on one machine.

The CPU kernels choose their code from ATen's CPU capability (csrc/ops/cpu/cpu_capability.h),
which ATEN_CPU_CAPABILITY lowers when torch starts: each value runs the CPU ops in a fresh
interpreter and compares them with the plain PyTorch reference (torchvision's kernel for
deform_conv2d).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lwdvc_kernels import ops

ROOT = Path(__file__).resolve().parents[2]
CAPABILITIES = {"default": "DEFAULT", "avx2": "AVX2", "avx512": "AVX512"}
RANK = {"DEFAULT": 0, "AVX2": 1, "AVX512": 2}

CHECK = """
import sys
import torch
from lwdvc_kernels import ops
from lwdvc_kernels.ops.reference.masked_weight import masked_weight_backward
from tests.ops.test_deform_conv2d import CONFIGS, make, rel_error, torchvision_result

expected = sys.argv[1]
assert ops.EXTENSION.cpu_capability() == expected, (ops.EXTENSION.cpu_capability(), expected)
g = torch.Generator().manual_seed(0)

# masked_weight(s): long rows (one factor a row), short rows (a repeated pattern), a list large
# enough for streaming stores; float32 and bfloat16; forward and gradient-decay backward.
weights = [torch.randn(96, 80, 3, 3, generator=g), torch.randn(40, 24, 3, 3, generator=g), \
torch.randn(64, 48, generator=g)]
for dtype in (torch.float32, torch.bfloat16):
    for dim in (0, 1):
        ws = [w.to(dtype) for w in weights]
        masks = [(torch.rand(w.size(dim), generator=g) < 0.5).float() for w in ws]
        got = ops.masked_weights(ws, masks, 0.3, dim)
        want = ops.masked_weights(ws, masks, 0.3, dim, backend="reference")
        assert all(torch.equal(a, b) for a, b in zip(got, want)), ("masked_weights", dtype, dim)
        for w, m in zip(ws, masks):
            grad = torch.randn(w.shape, generator=g).to(dtype)
            got = torch.ops.lwdvc.masked_weight_backward(grad, m, 0.3, dim)
            want = masked_weight_backward(grad, m, 0.3, dim)
            assert torch.equal(got, want), ("masked_weight_backward", dtype, dim)

# gdn: both compiled block loops, NCHW and channels_last.
for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 2e-2)):
    for cl in (False, True):
        x = torch.randn(2, 24, 7, 9, generator=g).to(dtype)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        beta = (torch.rand(24, generator=g) + 0.5).to(dtype)
        gamma = (0.1 * torch.rand(24, 24, generator=g)).to(dtype)
        for inverse in (False, True):
            got = ops.gdn(x, beta, gamma, inverse)
            want = ops.gdn(x.double(), beta.double(), gamma.double(), inverse, backend="reference")
            torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol)

# to_channels_last: register transpose (>= 16 channels, float32 -> float32 / bfloat16) and tiles.
for channels in (8, 16, 37):
    x = torch.randn(2, channels, 11, 13, generator=g)
    for dst in (torch.float32, torch.bfloat16, torch.float16):
        got = ops.to_channels_last(x, dst)
        assert torch.equal(got, ops.to_channels_last(x, dst, backend="reference")), (channels, dst)
        assert got.is_contiguous(memory_format=torch.channels_last)

# deform_conv2d: the per-ISA sampler, float32 and bfloat16.
for name in ("fvc-like", "odd-counts", "conv-groups"):
    x, offset, weight, bias, *conv = make(**CONFIGS[name])
    want = torchvision_result(x, offset, weight, bias, *conv)
    assert rel_error(ops.deform_conv2d(x, offset, weight, bias, *conv), want) <= 1e-5, name
    args = [t.bfloat16() if isinstance(t, torch.Tensor) else t for t in (x, offset, weight, bias)]
    want = torchvision_result(*[t.float() if isinstance(t, torch.Tensor) else t for t in args], *conv)
    assert rel_error(ops.deform_conv2d(*args, *conv), want) <= 5e-3, name

# conv2d_epilogue: the narrow direct conv where the CPU has AVX-512, oneDNN elsewhere.
assert ops.narrow_conv_supported() == (expected == "AVX512")
x = torch.randn(1, 24, 10, 12, generator=g).contiguous(memory_format=torch.channels_last)
w = torch.randn(3, 24, 3, 3, generator=g).contiguous(memory_format=torch.channels_last)
b = torch.randn(3, generator=g)
got = ops.conv2d_epilogue(x, w, b, padding=1, activation="relu")
want = ops.conv2d_epilogue(x, w, b, padding=1, activation="relu", backend="reference")
torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
if expected == "AVX512":
    torch.testing.assert_close(ops.conv2d_narrow(x, w, b, padding=1, activation="relu"), want, rtol=1e-5, atol=1e-5)
print("ok", expected)
"""


def native_capability() -> str:
    """The capability of this CPU, asked of a torch started without ATEN_CPU_CAPABILITY."""
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    result = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                            env=env, capture_output=True, text=True, timeout=120, check=True)
    return result.stdout.strip()


@pytest.mark.skipif(ops.EXTENSION is None, reason="needs the compiled extension")
@pytest.mark.parametrize("capability", list(CAPABILITIES))
def test_every_instruction_set_path_matches_the_reference(capability):
    expected = CAPABILITIES[capability]
    if RANK[expected] > RANK.get(native_capability().split("_")[0], 0):
        pytest.skip(f"this CPU lacks {expected}")
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability, OMP_NUM_THREADS="2",
               PYTHONPATH=os.pathsep.join([str(ROOT / "python"), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", CHECK, expected], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f"ok {expected}"
