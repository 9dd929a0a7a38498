"""to_channels_last: values, layout and dtype against the reference; bad input; fake kernel."""
from __future__ import annotations

import pytest
import torch

from lwdvc_kernels import ops
from tests.ops.helpers import needs_cuda

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]


@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("src", DTYPES, ids=str)
@pytest.mark.parametrize("dst", [None, torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", [(2, 19, 7, 13), (1, 64, 9, 16), (2, 37, 11, 29), (1, 11, 6, 21), (1, 1, 5, 5),
                                   (3, 5, 1, 1)])
def test_matches_reference(backend, src, dst, shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(src)
    got = ops.to_channels_last(x, dst, backend=backend)
    want = x.to(dtype=dst or src, memory_format=torch.channels_last)
    assert got.dtype == (dst or src) and got.is_contiguous(memory_format=torch.channels_last)
    assert got.data_ptr() != x.data_ptr()
    assert torch.equal(got, want)  # a cast and a permutation: bit-exact


def test_strided_input():
    x = torch.randn(2, 8, 6, 10)[:, ::2, :, 1:]
    torch.testing.assert_close(ops.to_channels_last(x, torch.bfloat16), x.to(torch.bfloat16), rtol=0, atol=0)


@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_bad_input(backend):
    with pytest.raises(ValueError, match="4-D"):
        ops.to_channels_last(torch.randn(3, 4, 5), backend=backend)
    with pytest.raises(TypeError, match="floating-point"):
        ops.to_channels_last(torch.ones(1, 2, 3, 3, dtype=torch.long), backend=backend)
    with pytest.raises(TypeError, match="dtype must be a floating-point"):
        ops.to_channels_last(torch.randn(1, 2, 3, 3), torch.int32, backend=backend)


def test_opcheck():
    torch.library.opcheck(torch.ops.lwdvc.to_channels_last.default, (torch.randn(2, 5, 4, 3), torch.bfloat16),
                          test_utils=("test_schema", "test_faketensor"))


@needs_cuda
def test_cuda():
    x = torch.randn(2, 19, 7, 13, device="cuda")
    got = ops.to_channels_last(x, torch.float16)
    assert got.is_contiguous(memory_format=torch.channels_last) and torch.equal(got, x.half())


@pytest.mark.parametrize("dst", [torch.float32, torch.bfloat16], ids=str)
def test_special_values_and_rounding_bit_exact(dst):
    """NaN, infinities, values that round up to infinity in bfloat16 and ties: the same bits as
    ATen's conversion (round to nearest even, NaN -> 0x7FC0), in the vectorised blocks and tails."""
    x = torch.randn(2, 37, 11, 29, generator=torch.Generator().manual_seed(3)) * 1e3
    x[0, 5, 3, 7] = float("nan")
    x.view(torch.int32)[0, 6, 3, 7] = 0x7FFFFFFF  # a NaN whose plain rounding would carry into the sign bit
    x[1, 20, 0, 0] = float("inf")
    x[1, 33, 4, 4] = -float("inf")  # channel tail
    x[0, 16, 2, 2] = 3.3895313892515355e38  # rounds up to inf in bfloat16
    x[1, 2, 10, 28] = 1.00390625  # halfway between two bfloat16 values: ties to even
    got = ops.to_channels_last(x, dst)
    want = x.to(dst, memory_format=torch.channels_last)
    bits = torch.int32 if dst == torch.float32 else torch.int16
    assert torch.equal(got.view(bits), want.view(bits))


@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("channels", [1, 3, 32])
@pytest.mark.parametrize("dtype", [None, torch.float32])
def test_always_a_new_tensor(backend, channels, dtype):
    x = torch.randn(2, channels, 5, 4).contiguous(memory_format=torch.channels_last)
    out = ops.to_channels_last(x, dtype, backend=backend)
    assert out is not x and out.data_ptr() != x.data_ptr()
    assert out.is_contiguous(memory_format=torch.channels_last) and torch.equal(out, x)
    out.zero_()
    assert not torch.equal(out, x)


@pytest.mark.parametrize("channels", [3, 16])
@pytest.mark.parametrize("dtype", [None, torch.float32], ids=["same", "float32"])
def test_the_op_returns_a_new_tensor(channels, dtype):
    """The schema has no alias annotation: the op itself (not only the functional API) copies an
    input that is already channels_last in the output dtype."""
    x = torch.randn(2, channels, 5, 4).contiguous(memory_format=torch.channels_last)
    out = torch.ops.lwdvc.to_channels_last(x, dtype)
    assert out is not x and out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    assert out.is_contiguous(memory_format=torch.channels_last) and torch.equal(out, x)
