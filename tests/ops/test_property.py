"""Property-based test: random shapes, dims, dtypes and strides against the reference."""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lwdvc_kernels import ops
from tests.ops.helpers import TOLERANCE


@st.composite
def masked_weight_cases(draw):
    ndim = draw(st.integers(1, 5))
    shape = draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim))
    dim = draw(st.integers(-ndim, ndim - 1))
    dtype = draw(st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.float64]))
    beta = draw(st.sampled_from([0.0, 0.125, 0.5, 1.0]))
    permute = draw(st.permutations(range(ndim)))
    seed = draw(st.integers(0, 2**16))
    return shape, dim, dtype, beta, permute, seed


@settings(max_examples=150, deadline=None)
@given(masked_weight_cases())
def test_dispatcher_matches_reference(case):
    shape, dim, dtype, beta, permute, seed = case
    g = torch.Generator().manual_seed(seed)
    # Build a tensor with permuted strides (non-contiguous when permute is not the identity).
    base = torch.randn([shape[p] for p in permute], generator=g).to(dtype)
    weight = base.permute([permute.index(i) for i in range(len(shape))])
    assert list(weight.shape) == shape
    mask = (torch.rand(weight.size(dim), generator=g) < 0.5).float()
    grad = torch.randn(shape, generator=g).to(dtype)

    got_w = weight.detach().requires_grad_(True)
    out = ops.masked_weight(got_w, mask, beta, dim)
    out.backward(grad)
    ref_w = weight.detach().clone().requires_grad_(True)
    ref = ops.masked_weight(ref_w, mask, beta, dim, backend="reference")
    ref.backward(grad)
    atol, rtol = TOLERANCE[dtype]
    torch.testing.assert_close(out, ref, atol=atol, rtol=rtol)
    torch.testing.assert_close(got_w.grad, ref_w.grad, atol=atol, rtol=rtol)
