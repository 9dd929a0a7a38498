"""conv2d_epilogue: every backend against a float64 oracle, bad input, fake kernel, compile/export."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lwdvc_kernels import ops
from tests.ops.helpers import BACKENDS, DTYPES, needs_cuda

# (atol, rtol) against the float64 oracle; convs sum many products, so looser than elementwise ops.
CONV_TOLERANCE = {torch.float64: (1e-10, 1e-10), torch.float32: (2e-5, 1e-5), torch.float16: (1e-2, 1e-2),
                  torch.bfloat16: (6e-2, 3e-2)}

# (cin, cout, kernel, stride, padding, dilation, groups, activation, upscale, residual)
CASES = [
    (5, 7, 3, 1, 1, 1, 1, "leaky_relu", 1, False),
    (6, 12, 3, 1, 1, 1, 1, "none", 2, False),
    (4, 8, 3, 1, 1, 1, 2, "relu", 2, True),
    (3, 5, 1, 1, 0, 1, 1, "none", 1, True),
    (4, 6, 5, 2, 2, 1, 1, "leaky_relu", 1, True),
    (6, 9, 3, 1, 2, 2, 3, "relu", 1, False),
]


def oracle(x, w, b, r, stride, padding, dilation, groups, activation, slope, upscale):
    y = F.conv2d(x.double(), w.double(), None if b is None else b.double(), stride, padding, dilation, groups)
    y = {"relu": F.relu, "leaky_relu": lambda t: F.leaky_relu(t, slope)}.get(activation, lambda t: t)(y)
    y = F.pixel_shuffle(y, upscale) if upscale > 1 else y
    return y if r is None else y + r.double()


def make_case(case, dtype, seed=0, height=7, width=9, channels_last=False):
    cin, cout, k, stride, padding, dilation, groups, activation, upscale, with_residual = case
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, cin, height, width, generator=g).to(dtype)
    w = (torch.randn(cout, cin // groups, k, k, generator=g) / (cin * k) ** 0.5).to(dtype)
    b = torch.randn(cout, generator=g).to(dtype)
    ho = (height + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    wo = (width + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    r = torch.randn(2, cout // upscale**2, ho * upscale, wo * upscale, generator=g).to(dtype) if with_residual else None
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, activation=activation,
                  negative_slope=0.1, upscale=upscale)
    return x, w, b, r, kwargs


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_matches_oracle(backend, dtype, case):
    x, w, b, r, kw = make_case(case, dtype)
    got = ops.conv2d_epilogue(x, w, b, r, backend=backend, **kw)
    want = oracle(x, w, b, r, kw["stride"], kw["padding"], kw["dilation"], kw["groups"], kw["activation"],
                  kw["negative_slope"], kw["upscale"])
    assert got.dtype == dtype and got.shape == want.shape
    atol, rtol = CONV_TOLERANCE[dtype]
    torch.testing.assert_close(got.double(), want, atol=atol, rtol=rtol)


@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("case", [CASES[1], CASES[2], CASES[3]], ids=["shuffle", "shuffle+res", "res"])
def test_channels_last_keeps_layout(backend, dtype, case):
    x, w, b, r, kw = make_case(case, dtype, channels_last=True)
    got = ops.conv2d_epilogue(x, w, b, r, backend=backend, **kw)
    assert got.is_contiguous(memory_format=torch.channels_last)
    want = oracle(x, w, b, r, kw["stride"], kw["padding"], kw["dilation"], kw["groups"], kw["activation"],
                  kw["negative_slope"], kw["upscale"])
    atol, rtol = CONV_TOLERANCE[dtype]
    torch.testing.assert_close(got.double(), want, atol=atol, rtol=rtol)


# channels_last epilogues that oneDNN cannot fuse alone (activation before the residual sum, or a
# PixelShuffle): the CPU kernel reorders the weight sub-pixel-major and finishes in one vector pass.
CHANNELS_LAST_SPLIT_CASES = [
    (5, 7, 3, 1, 1, 1, 1, "leaky_relu", 1, True),
    (6, 12, 3, 1, 1, 1, 1, "relu", 2, True),
    (6, 27, 1, 1, 0, 1, 1, "leaky_relu", 3, False),
    (4, 8, 3, 2, 1, 1, 1, "none", 2, True),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("residual_channels_last", [True, False], ids=["res_nhwc", "res_nchw"])
@pytest.mark.parametrize("case", CHANNELS_LAST_SPLIT_CASES,
                         ids=["act+res", "shuffle+act+res", "shuffle3+act", "strided-shuffle+res"])
def test_channels_last_conv_then_vector_pass(dtype, residual_channels_last, case):
    x, w, b, r, kw = make_case(case, dtype, seed=3, height=9, width=11, channels_last=True)
    w = w.contiguous(memory_format=torch.channels_last)
    if r is not None and residual_channels_last:
        r = r.contiguous(memory_format=torch.channels_last)
    got = ops.conv2d_epilogue(x, w, b, r, **kw)
    assert got.is_contiguous(memory_format=torch.channels_last) and got.dtype == dtype
    want = oracle(x, w, b, r, kw["stride"], kw["padding"], kw["dilation"], kw["groups"], kw["activation"],
                  kw["negative_slope"], kw["upscale"])
    atol, rtol = CONV_TOLERANCE[dtype]
    torch.testing.assert_close(got.double(), want, atol=atol, rtol=rtol)
    assert r is None or not torch.equal(got, ops.conv2d_epilogue(x, w, b, None, **kw))  # the residual counts


# 1x1 convolutions on few pixels (latents decoded a few positions at a time) run as one matrix
# product on CPU: batches of 1x1 maps and small maps, both layouts, every epilogue but the shuffle.
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("channels_last", [True, False], ids=["nhwc", "nchw"])
@pytest.mark.parametrize("batch,height,width", [(13, 1, 1), (1, 4, 6), (2, 8, 8)])
@pytest.mark.parametrize("activation,with_residual", [("leaky_relu", True), ("relu", False), ("none", True)])
def test_pointwise_on_few_pixels(dtype, channels_last, batch, height, width, activation, with_residual):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(batch, 24, height, width, generator=g).to(dtype)
    w = (torch.randn(20, 24, 1, 1, generator=g) / 24**0.5).to(dtype)
    b = torch.randn(20, generator=g).to(dtype)
    r = torch.randn(batch, 20, height, width, generator=g).to(dtype) if with_residual else None
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    got = ops.conv2d_epilogue(x, w, b, r, activation=activation, negative_slope=0.1)
    want = oracle(x, w, b, r, 1, 0, 1, 1, activation, 0.1, 1)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    assert got.shape == want.shape and got.dtype == dtype and got.is_contiguous(memory_format=layout)
    atol, rtol = CONV_TOLERANCE[dtype]
    torch.testing.assert_close(got.double(), want, atol=atol, rtol=rtol)


def test_float64_and_no_bias():
    x, w, _, r, kw = make_case(CASES[2], torch.float64)
    got = ops.conv2d_epilogue(x, w, None, r, **kw)
    want = oracle(x, w, None, r, kw["stride"], kw["padding"], kw["dilation"], kw["groups"], kw["activation"],
                  kw["negative_slope"], kw["upscale"])
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)


# Non-finite conv outputs through every CPU path (narrow direct conv, oneDNN with fused post-ops,
# oneDNN then the vector pass, the 1x1 matrix product, the scalar fallback): ReLU keeps NaN as
# F.relu does. (cin, cout, kernel, padding, activation, upscale, residual, dtype, channels_last, hw)
NON_FINITE_CASES = [
    (16, 2, 3, 1, "relu", 1, False, torch.float32, True, 12),  # narrow kernel
    (16, 16, 3, 1, "relu", 1, False, torch.float32, True, 12),  # oneDNN, ReLU post-op
    (16, 16, 3, 1, "relu", 1, False, torch.float32, False, 12),  # oneDNN, NCHW
    (16, 16, 3, 1, "relu", 1, False, torch.bfloat16, True, 12),
    (16, 16, 3, 1, "relu", 1, True, torch.float32, True, 12),  # oneDNN, then the residual
    (16, 16, 3, 1, "relu", 2, True, torch.float32, True, 12),  # oneDNN, then shuffle + residual
    (16, 16, 3, 1, "relu", 2, False, torch.float32, False, 12),  # scalar pass (NCHW shuffle)
    (16, 8, 1, 0, "relu", 1, False, torch.float32, True, 4),  # 1x1 on few pixels: matrix product
    (16, 8, 3, 1, "relu", 1, True, torch.float64, True, 12),  # scalar pass
    (16, 16, 3, 1, "leaky_relu", 1, False, torch.float32, True, 12),
]


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
@pytest.mark.parametrize("case", NON_FINITE_CASES, ids=[f"case{i}" for i in range(len(NON_FINITE_CASES))])
def test_relu_keeps_nan(case, value):
    cin, cout, k, padding, activation, upscale, with_residual, dtype, channels_last, hw = case
    g = torch.Generator().manual_seed(11)
    x = torch.randn(1, cin, hw, hw, generator=g)
    w = torch.randn(cout, cin, k, k, generator=g) / (cin * k)
    x[0, 3, hw // 2, hw // 2] = value
    if value == float("inf"):  # inf * w - inf * w: NaN in every output that reads the pixel
        x[0, 4, hw // 2, hw // 2] = -value
        w[:, 4] = w[:, 3]
    b = torch.randn(cout, generator=g)
    r = torch.randn(1, cout // upscale**2, hw * upscale, hw * upscale, generator=g) if with_residual else None
    x, w, b = x.to(dtype), w.to(dtype), b.to(dtype)
    r = None if r is None else r.to(dtype)
    if channels_last:
        x, w = x.contiguous(memory_format=torch.channels_last), w.contiguous(memory_format=torch.channels_last)
    kw = dict(padding=padding, activation=activation, negative_slope=0.1, upscale=upscale)
    got = ops.conv2d_epilogue(x, w, b, r, **kw)
    want = ops.conv2d_epilogue(x, w, b, r, backend="reference", **kw)
    assert want.isnan().sum() == k * k * cout  # the taps that read the value, every output channel
    assert torch.equal(got.isnan(), want.isnan())
    atol, rtol = CONV_TOLERANCE[dtype]
    torch.testing.assert_close(got, want, atol=atol, rtol=rtol, equal_nan=True)


# A strided bias (a view of every other element) through the oneDNN paths: oneDNN's fused ops
# read the bias as dense memory. (cin, cout, kernel, padding, groups, activation, upscale,
# residual, channels_last, hw)
STRIDED_BIAS_CASES = [
    (6, 12, 3, 1, 3, "none", 1, False, False, 5),  # oneDNN, fused post-ops
    (6, 12, 3, 1, 1, "relu", 1, False, True, 5),
    (6, 12, 3, 1, 1, "relu", 2, True, True, 5),  # oneDNN, then the vector pass
    (6, 12, 1, 0, 1, "leaky_relu", 1, True, True, 3),  # 1x1 on few pixels: oneDNN's matrix product
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("case", STRIDED_BIAS_CASES, ids=[f"case{i}" for i in range(len(STRIDED_BIAS_CASES))])
def test_strided_bias(case, dtype):
    cin, cout, k, padding, groups, activation, upscale, with_residual, channels_last, hw = case
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, cin, hw, hw, generator=g).to(dtype)
    w = (torch.randn(cout, cin // groups, k, k, generator=g) / (cin * k) ** 0.5).to(dtype)
    b = torch.randn(2 * cout, generator=g).to(dtype)[::2]
    r = torch.randn(2, cout // upscale**2, hw * upscale, hw * upscale, generator=g).to(dtype) if with_residual else None
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    kw = dict(padding=padding, groups=groups, activation=activation, negative_slope=0.1, upscale=upscale)
    got = ops.conv2d_epilogue(x, w, b, r, **kw)
    want = oracle(x, w, b, r, 1, padding, 1, groups, activation, 0.1, upscale)
    atol, rtol = CONV_TOLERANCE[dtype]
    torch.testing.assert_close(got.double(), want, atol=atol, rtol=rtol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "change,error,match",
    [
        (dict(w=torch.randn(8, 3, 3, 3)), ValueError, "expects 3 input channels"),
        (dict(b=torch.randn(5)), ValueError, "bias must have shape"),
        (dict(r=torch.randn(1, 2, 3, 3)), ValueError, "residual must have the output shape"),
        (dict(activation="gelu"), ValueError, "unknown activation"),
        (dict(upscale=3), ValueError, "upscale 3"),
        (dict(w=torch.randn(8, 4, 3, 3).double()), TypeError, "weight has dtype"),
        (dict(x=torch.randint(0, 3, (1, 4, 6, 6))), TypeError, "floating-point"),
        (dict(x=torch.randn(4, 6, 6)), ValueError, "input must be 4-D"),
    ],
)
def test_bad_input(backend, change, error, match):
    args = dict(x=torch.randn(1, 4, 6, 6), w=torch.randn(8, 4, 3, 3), b=torch.randn(8), r=None,
                activation="relu", upscale=2)
    args.update(change)
    with pytest.raises(error, match=match):
        ops.conv2d_epilogue(args["x"], args["w"], args["b"], args["r"], padding=1, activation=args["activation"],
                            upscale=args["upscale"], backend=backend)


def _example():
    x, w, b, r, kw = make_case(CASES[2], torch.float32)
    return (x, w, b, r, [1, 1], [1, 1], [1, 1], kw["groups"], kw["activation"], 0.1, kw["upscale"])


def test_opcheck():
    torch.library.opcheck(torch.ops.lwdvc.conv2d_epilogue.default, _example(),
                          test_utils=("test_schema", "test_faketensor"))


def test_compile_and_export():
    args = _example()

    class Block(torch.nn.Module):
        def forward(self, x, w, b, r):
            return torch.ops.lwdvc.conv2d_epilogue(x, w, b, r, *args[4:])

    block = Block()
    eager = block(*args[:4])
    exported = torch.export.export(block, args[:4])
    assert any("conv2d_epilogue" in str(n.target) for n in exported.graph.nodes)
    torch.testing.assert_close(exported.module()(*args[:4]), eager)
    compiled = torch.compile(block, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(*args[:4]), eager)


@needs_cuda
@pytest.mark.parametrize("backend", ["auto", "triton"])
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_cuda_matches_oracle(backend, case):
    x, w, b, r, kw = make_case(case, torch.float32, height=33, width=40)
    got = ops.conv2d_epilogue(x.cuda(), w.cuda(), b.cuda(), None if r is None else r.cuda(), backend=backend, **kw)
    want = oracle(x, w, b, r, kw["stride"], kw["padding"], kw["dilation"], kw["groups"], kw["activation"],
                  kw["negative_slope"], kw["upscale"])
    torch.testing.assert_close(got.cpu().double(), want, atol=1e-4, rtol=1e-4)
