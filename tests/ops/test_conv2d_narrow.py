"""conv2d_narrow (the CPU direct conv for 1-8 output channels) against a float64 oracle; its
use inside conv2d_epilogue; bad input; fake kernel."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lwdvc_kernels import ops
from tests.ops.helpers import run_without_extension

needs_narrow = pytest.mark.skipif(not ops.narrow_conv_supported(), reason="needs a CPU with AVX-512")

# (cin, cout, kernel, stride, padding, activation, residual): input channels below, at and
# around the kernel's 16 lanes (the masked tail), every output-channel count it is built for.
CASES = [
    (1, 1, 3, 1, 1, "none", False),
    (5, 2, 3, 1, 1, "relu", True),
    (16, 3, 3, 1, 0, "leaky_relu", False),
    (23, 4, 3, 2, 1, "none", True),
    (32, 5, 5, 1, 2, "relu", False),
    (48, 6, 1, 1, 0, "leaky_relu", True),
    (64, 7, 3, 2, 0, "none", False),
    (70, 8, 3, 1, 1, "relu", True),
    (64, 2, 5, 2, 1, "none", False),
]


def oracle(x, w, b, r, stride, padding, activation, slope=0.1):
    y = F.conv2d(x.double(), w.double(), None if b is None else b.double(), stride, padding)
    y = {"relu": F.relu, "leaky_relu": lambda t: F.leaky_relu(t, slope)}.get(activation, lambda t: t)(y)
    return y if r is None else y + r.double()


def make(case, seed=0, batch=2, height=11, width=19, channels_last=True, bias=True):
    cin, cout, k, stride, padding, activation, with_residual = case
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cin, height, width, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(cout, cin, k, k, generator=g) / (cin * k) ** 0.5
    b = torch.randn(cout, generator=g) if bias else None
    ho, wo = (height + 2 * padding - k) // stride + 1, (width + 2 * padding - k) // stride + 1
    r = torch.randn(batch, cout, ho, wo, generator=g) if with_residual else None
    return x, w, b, r, dict(stride=stride, padding=padding, activation=activation, negative_slope=0.1)


@needs_narrow
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}to{c[1]}k{c[2]}s{c[3]}" for c in CASES])
@pytest.mark.parametrize("channels_last", [True, False], ids=["cl", "nchw"])
def test_matches_oracle(case, channels_last):
    x, w, b, r, kw = make(case, channels_last=channels_last)
    out = ops.conv2d_narrow(x, w, b, r, **kw)
    expected = oracle(x, w, b, r, kw["stride"], kw["padding"], kw["activation"])
    assert out.dtype == torch.float32 and out.shape == expected.shape
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert out.is_contiguous(memory_format=fmt)
    torch.testing.assert_close(out.double(), expected, atol=2e-5, rtol=1e-5)


@needs_narrow
@pytest.mark.parametrize("height,width", [(1, 1), (2, 3), (5, 6), (9, 40)])
def test_every_pixel_block_and_border(height, width):
    """Widths that leave every remainder of the kernel's pixel blocks, maps smaller than the kernel."""
    for cout in range(1, 9):
        x, w, b, r, kw = make((37, cout, 3, 1, 1, "leaky_relu", True), seed=cout, batch=1, height=height,
                              width=width)
        out = ops.conv2d_narrow(x, w, b, r, **kw)
        torch.testing.assert_close(out.double(), oracle(x, w, b, r, 1, 1, "leaky_relu"), atol=2e-5, rtol=1e-5)


@needs_narrow
def test_no_bias_and_non_contiguous_weight():
    x, w, _, _, kw = make((40, 3, 3, 1, 1, "none", False), bias=False)
    w = w.contiguous(memory_format=torch.channels_last)
    out = ops.conv2d_narrow(x, w, None, None, **kw)
    torch.testing.assert_close(out.double(), oracle(x, w, None, None, 1, 1, "none"), atol=2e-5, rtol=1e-5)


@needs_narrow
def test_memory_after_the_input_is_never_read():
    """The input-channel tail is read with masked loads: NaNs stored right after the input (the
    next 16 lanes of its last pixel) must not reach the output."""
    n, c, h, w = 1, 7, 6, 9
    values = torch.randn(n, h, w, c)
    storage = torch.full((values.numel() + 64,), float("nan"))
    storage[: values.numel()] = values.flatten()
    x = storage.as_strided((n, c, h, w), (h * w * c, 1, w * c, c))  # channels_last, NaNs behind it
    assert x.is_contiguous(memory_format=torch.channels_last) and torch.isfinite(x).all()
    weight, bias = torch.randn(2, c, 3, 3), torch.randn(2)
    out = ops.conv2d_narrow(x, weight, bias, padding=1)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), oracle(x, weight, bias, None, 1, 1, "none"), atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("case", [(64, 2, 3, 1, 1, "relu", True), (48, 7, 3, 1, 1, "none", False),
                                  (64, 3, 1, 1, 0, "leaky_relu", True), (16, 2, 3, 2, 1, "none", False)])
def test_conv2d_epilogue_where_the_narrow_kernel_pays(case):
    """conv2d_epilogue picks the narrow kernel for these shapes (on AVX-512 CPUs): same results."""
    x, w, b, r, kw = make(case, height=17, width=30)
    out = ops.conv2d_epilogue(x, w, b, r, **kw)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out.double(), oracle(x, w, b, r, kw["stride"], kw["padding"], kw["activation"]),
                               atol=2e-5, rtol=1e-5)


@pytest.mark.skipif(not ops.narrow_conv_supported(), reason="needs a CPU with AVX-512")
def test_conv2d_epilogue_routes_to_the_narrow_kernel():
    """With the narrow kernel allowed, conv2d_epilogue's result is the narrow kernel's (bitwise),
    and differs in rounding from the oneDNN-only result; both match the oracle."""
    x, w, b, r, kw = make((64, 2, 3, 1, 1, "relu", True), height=17, width=30)
    narrow = ops.conv2d_narrow(x, w, b, r, **kw)
    routed = ops.conv2d_epilogue(x, w, b, r, **kw)
    with ops.narrow_conv_in_epilogue(False):
        onednn = ops.conv2d_epilogue(x, w, b, r, **kw)
    assert ops.EXTENSION.narrow_conv_in_epilogue()  # restored
    assert torch.equal(routed, narrow)
    assert not torch.equal(onednn, narrow)
    torch.testing.assert_close(onednn, narrow, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("change,error,match", [
    (dict(dtype=torch.float64), TypeError, "conv2d_narrow: input must be float32"),
    (dict(cout=9), ValueError, "conv2d_narrow: at most 8 output channels"),
    (dict(cin_weight=5), ValueError, "conv2d_narrow: .*expects 5 input channels"),
    (dict(activation="gelu"), ValueError, "conv2d_narrow: unknown activation 'gelu'"),
])
def test_bad_input(change, error, match):
    cout = change.get("cout", 3)
    x = torch.randn(1, 8, 6, 6, dtype=change.get("dtype", torch.float32))
    w = torch.randn(cout, change.get("cin_weight", 8), 3, 3, dtype=x.dtype)
    with pytest.raises(error, match=match):
        ops.conv2d_narrow(x, w, None, padding=1, activation=change.get("activation", "none"))


def test_opcheck():
    if not ops.narrow_conv_supported():
        pytest.skip("needs a CPU with AVX-512")
    x, w, b, r, kw = make(CASES[3])
    args = (x, w, b, r, [kw["stride"]] * 2, [kw["padding"]] * 2, kw["activation"], 0.1)
    torch.library.opcheck(torch.ops.lwdvc.conv2d_narrow.default, args, test_utils=("test_schema", "test_faketensor"))


NO_EXTENSION_SCRIPT = """
import sys
sys.modules["lwdvc_kernels._C"] = None  # the extension cannot be imported
import torch
import torch.nn.functional as F
from lwdvc_kernels import ops
assert ops.EXTENSION is None and not ops.narrow_conv_supported()
x, w, b = torch.randn(1, 20, 6, 7), torch.randn(3, 20, 3, 3), torch.randn(3)
out = ops.conv2d_narrow(x, w, b, padding=1, activation="relu")
torch.testing.assert_close(out, F.relu(F.conv2d(x, w, b, padding=1)))
with ops.narrow_conv_in_epilogue(False):
    torch.testing.assert_close(ops.conv2d_epilogue(x, w, b, padding=1), F.conv2d(x, w, b, padding=1))
try:
    ops.conv2d_narrow(x, torch.randn(9, 20, 3, 3), None, padding=1)
except ValueError as error:
    assert "at most 8 output channels" in str(error)
else:
    raise AssertionError("9 output channels accepted")
"""


def test_python_fallback_without_the_extension():
    run_without_extension(NO_EXTENSION_SCRIPT)


@needs_narrow
@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_relu_keeps_nan(activation):
    """A 3x3 16 -> 2 conv with one NaN pixel: the 9 taps reading it are NaN in both outputs, as in F.relu."""
    x, w, b, _, kw = make((16, 2, 3, 1, 1, activation, False), batch=1, height=12, width=12)
    x[0, 5, 6, 6] = float("nan")
    got = torch.ops.lwdvc.conv2d_narrow(x, w, b, None, [1, 1], [1, 1], activation, 0.1)
    want = oracle(x, w, b, None, 1, 1, activation)
    assert want.isnan().sum() == 18 and torch.equal(got.isnan(), want.isnan())
    torch.testing.assert_close(got.double(), want, atol=2e-5, rtol=1e-5, equal_nan=True)
