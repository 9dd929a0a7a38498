"""Convolution geometry is checked in Python ints before any kernel runs: a kernel larger than the
padded input and sizes that overflow int64 raise a ValueError naming the argument, alike in the
functional API, on every backend and in the fake kernels (torch.compile / export)."""
from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from lwdvc_kernels import ops
from tests.ops.helpers import DIRECT_OP_ERRORS

BIG = 2**63 - 1
X = torch.randn(1, 8, 6, 16).contiguous(memory_format=torch.channels_last)

# (weight shape, stride, padding, dilation, groups, dtype, message)
CASES = [
    pytest.param((4, 8, 7, 3), [3, 1], [0, 0], [1, 1], 1, torch.float32, "kernel .*larger than the padded input",
                 id="kernel-taller-than-input"),
    pytest.param((4, 8, 3, 3), [1, 1], [0, 0], [4, 1], 1, torch.float32, "kernel .*larger than the padded input",
                 id="dilated-kernel"),
    pytest.param((4, 8, 3, 3), [1, 1], [8, BIG], [1, 1], 1, torch.float32, r"padding \[8, 9223372036854775807\]",
                 id="padding-int64-max"),
    pytest.param((4, 8, 3, 3), [1, 1], [8, 2**62], [1, 1], 1, torch.float32, r"padding \[8, 4611686018427387904\]",
                 id="padding-2^62"),
    pytest.param((4, 4, 3, 3), [1, 1], [2**61, 0], [1, 1], 2, torch.float64, r"padding \[2305843009213693952, 0\]",
                 id="padding-2^61-float64-groups"),
    pytest.param((4, 8, 3, 3), [2**64, 1], [0, 0], [1, 1], 1, torch.float32, "stride must be positive and fit in int64",
                 id="stride-beyond-int64"),
    pytest.param((4, 8, 3, 3), [1, 1], [0, 0], [2**62, 1], 1, torch.float32, "kernel .*larger than the padded input",
                 id="dilation-2^62"),
    pytest.param((4, 8, 3, 3), [1, 1], [-1, 0], [1, 1], 1, torch.float32, "padding must be non-negative",
                 id="negative-padding"),
]


def _fits_the_schema(*values):
    """The dispatcher itself refuses ints beyond int64 before any kernel (fake or real) runs."""
    return all(-BIG - 1 <= v <= BIG for pair in values for v in pair)


def _args(weight_shape, dtype):
    return X.to(dtype), torch.randn(weight_shape, dtype=dtype)


@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("weight_shape, stride, padding, dilation, groups, dtype, message", CASES)
def test_conv2d_epilogue(backend, weight_shape, stride, padding, dilation, groups, dtype, message):
    x, w = _args(weight_shape, dtype)
    with pytest.raises(ValueError, match=f"conv2d_epilogue: .*{message}"):
        ops.conv2d_epilogue(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups, backend=backend)
    if not _fits_the_schema(stride, padding, dilation):
        return
    with FakeTensorMode() as mode, pytest.raises(ValueError, match=message):
        torch.ops.lwdvc.conv2d_epilogue(mode.from_tensor(x), mode.from_tensor(w), None, None, stride, padding,
                                        dilation, groups, "none", 0.01, 1)


@pytest.mark.parametrize("weight_shape, stride, padding, dilation, groups, dtype, message",
                         [c for c in CASES if c.values[3] == [1, 1] and c.values[4] == 1])
def test_conv2d_narrow(weight_shape, stride, padding, dilation, groups, dtype, message):
    x, w = _args(weight_shape, dtype)
    with pytest.raises(ValueError, match=f"conv2d_narrow: .*{message}"):
        ops.conv2d_narrow(x, w, stride=stride, padding=padding)
    if not _fits_the_schema(stride, padding):
        return
    with FakeTensorMode() as mode, pytest.raises(ValueError, match=message):
        torch.ops.lwdvc.conv2d_narrow(mode.from_tensor(x), mode.from_tensor(w), None, None, stride, padding,
                                      "none", 0.01)


@pytest.mark.parametrize("backend", ["auto", "reference", "torchvision"])
@pytest.mark.parametrize("weight_shape, stride, padding, dilation, groups, dtype, message",
                         [c for c in CASES if c.values[4] == 1])
def test_deform_conv2d(backend, weight_shape, stride, padding, dilation, groups, dtype, message):
    x, w = _args(weight_shape, dtype)
    offset = torch.zeros(1, 2 * w.shape[2] * w.shape[3], 1, 14)
    with pytest.raises(ValueError, match=f"deform_conv2d: .*{message}"):
        ops.deform_conv2d(x, offset, w, None, stride, padding, dilation, backend=backend)


def test_the_message_names_the_sizes_like_conv2d():
    x, w = _args((4, 8, 7, 3), torch.float32)
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
        torch.nn.functional.conv2d(x, w, stride=(3, 1))
    with pytest.raises(ValueError, match=r"kernel \(7 x 3 with dilation \[1, 1\]\) is larger than the padded input "
                                         r"\(6 x 16\)"):
        ops.conv2d_narrow(x, w, stride=(3, 1))


def test_the_largest_valid_geometry_still_runs():
    x, w = _args((4, 8, 6, 3), torch.float32)
    out = ops.conv2d_epilogue(x, w, stride=(3, 1))
    torch.testing.assert_close(out, torch.nn.functional.conv2d(x, w, stride=(3, 1)), atol=1e-5, rtol=1e-5)


# Direct torch.ops.lwdvc.* calls skip the Python checks: the C++ preconditions must refuse these
# too (they used to divide with truncation toward zero, so a kernel one row taller than the
# padded input gave an output of 1 row, and sizes that overflow int64 could wrap around).
DIRECT = "larger than the padded input|overflows int64|too large to index"
DIRECT_CASES = [c for c in CASES if _fits_the_schema(*c.values[1:4]) and c.values[2][0] >= 0] + [
    pytest.param((4, 8, 9, 3), [3, 1], [1, 0], [1, 1], 1, torch.float32, None, id="kernel-taller-than-padded"),
    pytest.param((4, 8, 3, 3), [1, 1], [2**62 - 1, 0], [1, 1], 1, torch.float32, None, id="padded-size-overflows"),
    pytest.param((4, 8, 3, 3), [1, 1], [2**61, 2**61], [1, 1], 1, torch.float32, None, id="output-overflows"),
]


@pytest.mark.parametrize("weight_shape, stride, padding, dilation, groups, dtype, message", DIRECT_CASES)
@pytest.mark.parametrize("op", ["conv2d_epilogue", "conv2d_narrow", "deform_conv2d"])
def test_direct_op_calls_refuse_the_geometry(op, weight_shape, stride, padding, dilation, groups, dtype, message):
    if op != "conv2d_epilogue" and (groups != 1 or (op == "conv2d_narrow" and dilation != [1, 1])):
        pytest.skip("the op has no such argument")
    x, w = _args(weight_shape, dtype)
    with pytest.raises(DIRECT_OP_ERRORS, match=f"{op}: .*({DIRECT})"):
        if op == "conv2d_epilogue":
            torch.ops.lwdvc.conv2d_epilogue(x, w, None, None, stride, padding, dilation, groups, "none", 0.0, 1)
        elif op == "conv2d_narrow":
            torch.ops.lwdvc.conv2d_narrow(x, w, None, None, stride, padding, "none", 0.0)
        else:
            offset = torch.zeros(1, 2 * w.shape[2] * w.shape[3], 1, 14, dtype=dtype)
            torch.ops.lwdvc.deform_conv2d(x, w, offset, None, stride, padding, dilation, groups, 1)
