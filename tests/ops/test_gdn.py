"""gdn (fused GDN / IGDN): every backend against a float64 oracle and the engine's GDN layer."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lwdvc_kernels import ops
from lwdvc_kernels.nn import GDN
from tests.ops.helpers import BACKENDS, DTYPES, needs_cuda

GDN_TOLERANCE = {torch.float64: (1e-12, 1e-12), torch.float32: (1e-5, 1e-5), torch.float16: (5e-3, 5e-3),
                 torch.bfloat16: (3e-2, 3e-2)}


def oracle(x, beta, gamma, inverse):
    x, beta, gamma = x.double(), beta.double(), gamma.double()
    norm = torch.sqrt(F.conv2d(x * x, gamma[:, :, None, None], beta))
    return x * norm if inverse else x / norm


def make(channels, dtype, seed=0, height=5, width=7):
    g = torch.Generator().manual_seed(seed)
    x = (2 * torch.randn(2, channels, height, width, generator=g)).to(dtype)
    beta = (0.5 + torch.rand(channels, generator=g)).to(dtype)
    gamma = (0.1 * torch.rand(channels, channels, generator=g)).to(dtype)
    return x, beta, gamma


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("channels", [1, 5, 19, 40])
@pytest.mark.parametrize("inverse", [False, True], ids=["gdn", "igdn"])
def test_matches_oracle(backend, dtype, channels, inverse):
    x, beta, gamma = make(channels, dtype)
    got = ops.gdn(x, beta, gamma, inverse, backend=backend)
    assert got.dtype == dtype and got.shape == x.shape
    atol, rtol = GDN_TOLERANCE[dtype]
    torch.testing.assert_close(got.double(), oracle(x, beta, gamma, inverse), atol=atol, rtol=rtol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16], ids=str)
def test_channels_last_and_odd_pixel_counts(dtype):
    x, beta, gamma = make(13, dtype, height=11, width=13)  # 143 pixels: a partial last block
    x = x.contiguous(memory_format=torch.channels_last)
    got = ops.gdn(x, beta, gamma, True)
    assert got.is_contiguous(memory_format=torch.channels_last)
    atol, rtol = GDN_TOLERANCE[dtype]
    torch.testing.assert_close(got.double(), oracle(x, beta, gamma, True), atol=atol, rtol=rtol)


@pytest.mark.parametrize("inverse", [False, True])
def test_equals_engine_layer(inverse):
    layer = GDN(24, inverse=inverse)
    with torch.no_grad():
        layer.beta.uniform_(0.5, 1.5)
        layer.gamma.uniform_(0.0, 0.3)
    x = torch.randn(1, 24, 9, 10)
    with torch.no_grad():
        want = layer(x)
        got = ops.gdn(x, layer.effective_beta(), layer.effective_gamma(), inverse)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "change,error,match",
    [
        (dict(beta=torch.rand(5)), ValueError, "beta must have shape"),
        (dict(gamma=torch.rand(4, 5)), ValueError, "gamma must have shape"),
        (dict(gamma=torch.rand(4, 4).double()), TypeError, "input dtype"),
        (dict(x=torch.randn(4, 3, 3)), ValueError, "4-D"),
        (dict(x=torch.ones(1, 4, 3, 3, dtype=torch.long)), TypeError, "floating-point"),
    ],
)
def test_bad_input(backend, change, error, match):
    args = dict(x=torch.randn(1, 4, 3, 3), beta=torch.rand(4) + 0.5, gamma=torch.rand(4, 4))
    args.update(change)
    with pytest.raises(error, match=match):
        ops.gdn(args["x"], args["beta"], args["gamma"], True, backend=backend)


def test_opcheck():
    x, beta, gamma = make(6, torch.float32)
    torch.library.opcheck(torch.ops.lwdvc.gdn.default, (x, beta, gamma, True),
                          test_utils=("test_schema", "test_faketensor"))


def test_compile_and_export():
    x, beta, gamma = make(6, torch.float32)

    class Norm(torch.nn.Module):
        def forward(self, x, beta, gamma):
            return torch.ops.lwdvc.gdn(x, beta, gamma, False)

    eager = Norm()(x, beta, gamma)
    exported = torch.export.export(Norm(), (x, beta, gamma))
    torch.testing.assert_close(exported.module()(x, beta, gamma), eager)
    compiled = torch.compile(Norm(), backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x, beta, gamma), eager)


@needs_cuda
@pytest.mark.parametrize("backend", ["auto", "triton"])
@pytest.mark.parametrize("channels", [3, 64, 130])
def test_cuda_matches_oracle(backend, channels):
    x, beta, gamma = make(channels, torch.float32, height=17, width=33)
    got = ops.gdn(x.cuda(), beta.cuda(), gamma.cuda(), True, backend=backend)
    torch.testing.assert_close(got.cpu().double(), oracle(x, beta, gamma, True), atol=1e-5, rtol=1e-5)
