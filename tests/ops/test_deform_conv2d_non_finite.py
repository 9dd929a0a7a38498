"""Non-finite offsets never reach torchvision's deform_conv2d kernel (it reads out of bounds at NaN
positions and crashes the process): the layer and the torchvision backend raise
NonFiniteOffsetError instead. Each case runs in a subprocess, so a crash fails the test cleanly."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
    p for p in (os.environ.get("PYTHONPATH", ""), os.path.join(ROOT, "python"), ROOT) if p)}


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=ENV, capture_output=True, text=True,
                          timeout=300)


def test_layer_in_training_with_nan_offsets_raises_instead_of_crashing():
    result = _run("""
        import torch
        from lwdvc_kernels.nn import DeformConv2d
        from lwdvc_kernels.ops.deform_conv2d_torchvision import NonFiniteOffsetError
        layer = DeformConv2d(8, 8, 3, padding=1, deformable_groups=2).train()
        x = torch.randn(1, 8, 16, 16, requires_grad=True)
        feature = torch.randn(1, 8, 16, 16)
        feature[0, 0, 3, 3] = float("nan")
        try:
            layer(x, feature).sum().backward()
        except NonFiniteOffsetError as error:
            print("raised:", error)
        else:
            print("no error")
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "raised: DeformConv2d(8, 8, kernel_size=(3, 3)" in result.stdout
    assert "non-finite" in result.stdout


def test_torchvision_backend_rejects_nan_and_inf_offsets():
    result = _run("""
        import torch
        from lwdvc_kernels.ops import deform_conv2d
        from lwdvc_kernels.ops.deform_conv2d_torchvision import NonFiniteOffsetError
        x, w = torch.randn(1, 4, 8, 8), torch.randn(4, 4, 3, 3)
        for bad in ("nan", "inf"):
            offset = torch.zeros(1, 18, 8, 8)
            offset[0, 0, 2, 2] = float(bad)
            try:
                deform_conv2d(x, offset, w, None, 1, 1, 1, backend="torchvision")
            except NonFiniteOffsetError as error:
                print(bad, "raised:", error)
        print("finite:", bool(torch.isfinite(deform_conv2d(x, torch.zeros(1, 18, 8, 8), w, None, 1, 1, 1,
                                                            backend="torchvision")).all()))
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "nan raised: deform_conv2d: the offsets hold 1 non-finite value(s)" in result.stdout
    assert "inf raised:" in result.stdout
    assert "finite: True" in result.stdout
