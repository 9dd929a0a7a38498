"""channel_norm: every backend against a float64 oracle, single and coupled weights."""
from __future__ import annotations

import pytest
import torch

from lwdvc_kernels import ops
from tests.ops.helpers import BACKENDS, DTYPES, needs_cuda, non_contiguous


def oracle(weights, dims):
    total = 0
    for w, d in zip(weights, dims):
        total = total + w.double().movedim(d, 0).reshape(w.size(d), -1).pow(2).sum(1)
    return total.sqrt()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_coupled_weights_match_oracle(backend, dtype):
    g = torch.Generator().manual_seed(7)
    # A channel group spanning a conv (out dim 0), a transposed conv (out dim 1) and a bias.
    weights = [
        torch.randn(12, 5, 3, 3, generator=g).to(dtype),
        non_contiguous(torch.randn(4, 12, 4, 4, generator=g).to(dtype)),
        torch.randn(12, generator=g).to(dtype),
    ]
    dims = [0, 1, 0]
    norms = ops.channel_norm(weights, dims, backend=backend)
    assert norms.dtype == torch.float32 and norms.shape == (12,)
    rtol = 1e-5 if dtype == torch.float32 else 1e-3
    torch.testing.assert_close(norms.double(), oracle(weights, dims), rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape,dim", [((9, 4, 3, 3), 0), ((6, 40), 1), ((3, 2, 5), -1)])
def test_single_weight(backend, shape, dim):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ops.channel_norm(w, dim, backend=backend).double(), oracle([w], [dim % w.dim()]),
                               rtol=1e-5, atol=1e-6)


def test_does_not_track_gradients():
    w = torch.randn(4, 3, requires_grad=True)
    assert not ops.channel_norm(w, 0).requires_grad


def test_opcheck():
    weights = [torch.randn(6, 3, 3, 3), torch.randn(2, 6, 2, 2)]
    torch.library.opcheck(torch.ops.lwdvc.channel_norm.default, (weights, [0, 1]))


@needs_cuda
@pytest.mark.parametrize("backend", ["auto", "triton"])
def test_cuda_matches_reference(backend):
    weights = [torch.randn(16, 8, 3, 3), torch.randn(8, 16)]
    got = ops.channel_norm([w.cuda() for w in weights], [0, 1], backend=backend)
    torch.testing.assert_close(got.cpu().double(), oracle(weights, [0, 1]), rtol=1e-5, atol=1e-6)


# Sums that leave float32's range or precision: squares above 1.8e19 overflow, below 1e-19
# underflow, and a float32 sum of 2**25 ones stops at 2**24 (norm 4096 instead of 5792.6).
EXTREME = [
    pytest.param(lambda: torch.tensor([[1e20]]), id="huge"),
    pytest.param(lambda: torch.tensor([[1e-25]]), id="tiny"),
    pytest.param(lambda: torch.tensor([[2e38, 2e38, -1e38]]), id="float32-max"),
    pytest.param(lambda: torch.tensor([[1e20, 1.0]]).bfloat16(), id="huge-bfloat16"),
    pytest.param(lambda: torch.tensor([[1e20, -1e-25]], dtype=torch.float64), id="huge-float64"),
    pytest.param(lambda: torch.tensor([[1e-30, 1e-30]], dtype=torch.float64), id="tiny-float64"),
    pytest.param(lambda: torch.ones(1, 2**25), id="many"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", EXTREME)
def test_matches_vector_norm_beyond_float32_range(backend, make):
    w = make()
    if backend == "triton" and w.numel() > 2**20 and not torch.cuda.is_available():
        pytest.skip("too slow in Triton's interpreter")
    got = ops.channel_norm(w, 0, backend=backend)
    want = torch.linalg.vector_norm(w.double(), dim=1).float()
    assert got.dtype == torch.float32 and torch.isfinite(want).all()
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
