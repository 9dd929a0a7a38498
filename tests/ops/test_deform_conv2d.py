"""deform_conv2d: the CPU kernel against torchvision's, bad input, fake kernel, compile/export.

torchvision's kernel is the oracle (its layout is checked against golden data and an independent
sampler in tests/models/test_fvc_deform_conv.py). Offsets are random and several pixels large,
so taps land outside the image, on its border and at fractional positions.
"""
from __future__ import annotations

import pytest
import torch
from torch._prims_common import suggest_memory_format

from lwdvc_kernels import ops
from lwdvc_kernels.ops.deform_conv2d_torchvision import deform_conv2d_torchvision

needs_extension = pytest.mark.skipif(ops.EXTENSION is None, reason="needs the compiled extension")
# ||ours - torchvision|| / ||torchvision|| of a bfloat16 call, both fed the same bf16 values:
# the columns and the output are rounded to bf16 (2^-9 relative each).
BF16_REL_ERROR = 5e-3  # measured 1.4e-3 to 2.5e-3


def make(cin=16, cout=12, groups=1, offset_groups=4, kernel=3, stride=1, padding=1, dilation=1, height=9,
         width=13, batch=2, bias=True, scale=3.0, seed=0):
    """Random (input, offset, weight, bias, stride, padding, dilation) in float32."""
    g = torch.Generator().manual_seed(seed)
    out_h = (height + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    out_w = (width + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    x = torch.randn(batch, cin, height, width, generator=g)
    offset = scale * torch.randn(batch, 2 * offset_groups * kernel * kernel, out_h, out_w, generator=g)
    weight = torch.randn(cout, cin // groups, kernel, kernel, generator=g)
    b = torch.randn(cout, generator=g) if bias else None
    return x, offset, weight, b, stride, padding, dilation


def rel_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.double() - want.double()).norm() / want.double().norm())


def torchvision_result(x, offset, weight, bias, stride, padding, dilation):
    return ops.deform_conv2d(x, offset, weight, bias, stride, padding, dilation, backend="torchvision")


CONFIGS = {
    "fvc-like": dict(cin=64, cout=64, offset_groups=8, height=24, width=40, batch=1),  # several row tiles
    "odd-counts": dict(cin=23, cout=29, offset_groups=1),
    "per-channel-groups": dict(cin=7, cout=5, offset_groups=7),
    "conv-groups": dict(cin=12, cout=6, groups=3, offset_groups=4),
    "groups-straddle-offset-groups": dict(cin=12, cout=8, groups=2, offset_groups=3),
    "stride-dilation": dict(cin=10, cout=9, offset_groups=2, stride=2, padding=2, dilation=2, height=11, width=12),
    "no-bias-5x5": dict(cin=6, cout=4, offset_groups=2, kernel=5, padding=0, bias=False, height=8, width=10),
    "1x1-single-channel": dict(cin=1, cout=3, offset_groups=1, kernel=1, padding=0),
}


@needs_extension
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_float32_matches_torchvision(config, channels_last):
    x, offset, weight, bias, *conv = make(**CONFIGS[config])
    want = torchvision_result(x, offset, weight, bias, *conv)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    got = ops.deform_conv2d(x, offset, weight, bias, *conv, backend="auto")
    assert got.shape == want.shape and got.dtype == torch.float32
    assert got.is_contiguous(memory_format=suggest_memory_format(x))  # (one channel: both formats agree)
    assert rel_error(got, want) <= 1e-5
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


@needs_extension
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("config", ["fvc-like", "odd-counts", "conv-groups", "stride-dilation"])
def test_bfloat16_within_documented_bound(config, channels_last):
    args = [t.bfloat16() if isinstance(t, torch.Tensor) else t for t in make(**CONFIGS[config])]
    want = torchvision_result(*[t.float() if isinstance(t, torch.Tensor) else t for t in args])
    x = args[0].contiguous(memory_format=torch.channels_last) if channels_last else args[0]
    got = ops.deform_conv2d(x, *args[1:], backend="auto")
    assert got.dtype == torch.bfloat16
    assert got.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    assert rel_error(got, want) <= BF16_REL_ERROR


@pytest.mark.parametrize("backend", ["auto", "torchvision", "reference"])
@pytest.mark.parametrize("sizes,groups", [((2, 3, 4, 1, 2, 3, 3, 5), 1), ((5, 0, 7), 1), ((3, 5, 4), 2)],
                         ids=["compacted-8-groups", "empty-group", "straddles-conv-groups"])
def test_uneven_offset_groups_equal_one_group_per_channel(sizes, groups, backend):
    """offset_group_sizes: each group's offsets serve its channels, as if expanded per channel."""
    cin = sum(sizes)
    x, offset, weight, bias, *conv = make(cin=cin, cout=6, groups=groups, offset_groups=len(sizes))
    owner = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    expanded = offset.unflatten(1, (len(sizes), -1)).index_select(1, owner).flatten(1, 2)
    want = torchvision_result(x, expanded, weight, bias, *conv)
    for dtype, bound in ((torch.float32, 1e-5), (torch.bfloat16, BF16_REL_ERROR)):
        args = [t.to(dtype) if isinstance(t, torch.Tensor) else t for t in (x, offset, weight, bias)]
        reference = want if dtype == torch.float32 else torchvision_result(
            *[t.float() if isinstance(t, torch.Tensor) else t for t in (args[0], expanded.to(dtype), *args[2:])], *conv)
        got = ops.deform_conv2d(*args, *conv, offset_group_sizes=sizes, backend=backend)
        if backend == "auto" and ops.EXTENSION is None:
            continue
        assert rel_error(got, reference) <= bound


@needs_extension
def test_offsets_on_and_around_the_border():
    """Positions exactly on -1, 0, H-1, H (and just inside/outside): zeros outside, exact inside."""
    x, offset, weight, bias, *conv = make(cin=4, cout=3, offset_groups=1, kernel=1, padding=0, height=5, width=6,
                                          batch=1)
    edges = torch.tensor([-1.0, -0.999, -0.5, 0.0, 3.5, 4.0, 4.001, 4.999, 5.0, 5.5, 6.0, -7.0])
    base_y = torch.arange(5.0)[:, None].expand(5, 6)
    base_x = torch.arange(6.0)[None, :].expand(5, 6)
    targets = edges[torch.arange(30) % len(edges)].view(5, 6)
    offset[0, 0] = targets - base_y            # y positions run through the edge values
    offset[0, 1] = targets.flip(0) - base_x    # x positions too, in another order
    want = torchvision_result(x, offset, weight, bias, *conv)
    got = ops.deform_conv2d(x, offset, weight, bias, *conv, backend="auto")
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@needs_extension
def test_offsets_in_channels_last_and_non_contiguous_inputs():
    x, offset, weight, bias, *conv = make(cin=8, cout=6, offset_groups=2)
    want = torchvision_result(x, offset, weight, bias, *conv)
    strided_x = x.transpose(2, 3).contiguous().transpose(2, 3)
    got = ops.deform_conv2d(strided_x, offset.contiguous(memory_format=torch.channels_last),
                            weight.contiguous(memory_format=torch.channels_last), bias, *conv, backend="auto")
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


@needs_extension
def test_thread_count_does_not_change_the_result():
    x, offset, weight, bias, *conv = make(**CONFIGS["fvc-like"])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = ops.deform_conv2d(x, offset, weight, bias, *conv, backend="auto")
        torch.set_num_threads(2)
        two = ops.deform_conv2d(x, offset, weight, bias, *conv, backend="auto")
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)


@pytest.mark.parametrize("config", ["odd-counts", "conv-groups", "stride-dilation", "no-bias-5x5"])
def test_reference_matches_torchvision_with_gradients(config):
    """The plain PyTorch oracle against torchvision, forward and gradients of every input."""
    x, offset, weight, bias, *conv = [t.double() if isinstance(t, torch.Tensor) else t for t in make(**CONFIGS[config])]
    inputs = [t.requires_grad_(True) for t in (x, offset, weight, bias) if t is not None]
    results = []
    for backend in ("reference", "torchvision"):
        y = ops.deform_conv2d(x, offset, weight, bias, *conv, backend=backend)
        results.append((y, torch.autograd.grad(y.square().sum(), inputs)))
    (ours, our_grads), (theirs, their_grads) = results
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    for mine, want in zip(our_grads, their_grads):
        torch.testing.assert_close(mine, want, rtol=1e-8, atol=1e-8)


def test_layer_call_routes_gradients_and_other_dtypes_to_torchvision():
    from lwdvc_kernels.nn.deform_conv import deform_conv2d_for_layer

    x, offset, weight, bias, *conv = make(cin=6, cout=4, offset_groups=2)
    x.requires_grad_(True)
    y = deform_conv2d_for_layer(x, offset, weight, bias, *conv)
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    double = deform_conv2d_for_layer(*[t.double() if isinstance(t, torch.Tensor) else t
                                       for t in (x.detach(), offset, weight, bias, *conv)])
    torch.testing.assert_close(double.float(), y.detach(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["auto", "torchvision", "reference"])
@pytest.mark.parametrize(
    "change,error,match",
    [
        (dict(offset=torch.randn(1, 17, 5, 6)), ValueError,
         r"offset must have shape \[1, 18, 5, 6\] .*got \[1, 17, 5, 6\]"),
        (dict(offset=torch.randn(1, 36, 4, 6)), ValueError, "offset must have shape"),
        (dict(offset=torch.randn(1, 36, 5, 6).double()), TypeError, "offset has dtype"),
        (dict(weight=torch.randn(3, 8, 3, 3).bfloat16()), TypeError, "weight has dtype"),
        (dict(bias=torch.randn(4)), ValueError, r"bias must have shape \[3\]"),
        (dict(x=torch.randn(8, 5, 6)), ValueError, "input must be 4-D"),
        (dict(weight=torch.randn(3, 8, 3)), ValueError, "weight must be 4-D"),
        (dict(x=torch.randn(1, 6, 5, 6)), ValueError, "expects 8 input channels"),
        (dict(x=torch.ones(1, 8, 5, 6, dtype=torch.long)), TypeError, "floating-point"),
        (dict(x=torch.randn(1, 8, 1, 1), offset=torch.randn(1, 36, 1, 1)), ValueError, "smaller than the kernel"),
        (dict(sizes=[3, 4]), ValueError, r"offset_group_sizes \[3, 4\] must have offset_groups = 2 .* summing to"),
        (dict(sizes=[9, -1]), ValueError, "non-negative entries"),
        (dict(sizes=[8]), ValueError, "offset_groups = 2"),
    ],
)
def test_bad_input_names_the_problem(backend, change, error, match):
    args = dict(x=torch.randn(1, 8, 5, 6), offset=torch.randn(1, 36, 5, 6), weight=torch.randn(3, 8, 3, 3),
                bias=None, sizes=None)
    args.update(change)
    padding = 0 if "smaller" in match else 1
    with pytest.raises(error, match=match):
        ops.deform_conv2d(args["x"], args["offset"], args["weight"], args["bias"], 1, padding,
                          offset_group_sizes=args["sizes"], backend=backend)


@needs_extension
def test_cpu_kernel_rejects_dtypes_it_lacks():
    x, offset, weight, bias, *conv = make(cin=4, cout=2, offset_groups=1)
    with pytest.raises(TypeError, match="supports float32 and bfloat16, got Double"):
        ops.deform_conv2d(x.double(), offset.double(), weight.double(), None, *conv, backend="auto")


def test_unknown_backend():
    x, offset, weight, bias, *conv = make(cin=4, cout=2, offset_groups=1)
    with pytest.raises(ValueError, match="unknown backend"):
        ops.deform_conv2d(x, offset, weight, bias, *conv, backend="cuda")


def _op_args(config: str):
    x, offset, weight, bias, stride, padding, dilation = make(**CONFIGS[config])
    groups, offset_groups = x.size(1) // weight.size(1), offset.size(1) // (2 * weight.size(2) * weight.size(3))
    return (x, weight, offset, bias, [stride] * 2, [padding] * 2, [dilation] * 2, groups, offset_groups)


def test_opcheck():
    torch.library.opcheck(torch.ops.lwdvc.deform_conv2d.default, _op_args("conv-groups"),
                          test_utils=("test_schema", "test_faketensor"))
    args = _op_args("conv-groups")
    torch.library.opcheck(torch.ops.lwdvc.deform_conv2d.default, args, {"offset_group_sizes": [2, 4, 3, 3]},
                          test_utils=("test_schema", "test_faketensor"))


def test_fake_kernel_shape_and_memory_format():
    from torch._subclasses.fake_tensor import FakeTensorMode

    args = _op_args("stride-dilation")
    with FakeTensorMode() as mode:
        fake = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
        fake[0] = fake[0].contiguous(memory_format=torch.channels_last)
        out = torch.ops.lwdvc.deform_conv2d(*fake)
    assert tuple(out.shape) == (2, 9, 6, 6) and out.is_contiguous(memory_format=torch.channels_last)


@needs_extension
def test_compile_and_export():
    args = _op_args("odd-counts")

    class Block(torch.nn.Module):
        def forward(self, x, weight, offset, bias):
            return torch.ops.lwdvc.deform_conv2d(x, weight, offset, bias, *args[4:])

    eager = Block()(*args[:4])
    torch.testing.assert_close(eager, deform_conv2d_torchvision(*args), rtol=1e-5, atol=1e-4)
    exported = torch.export.export(Block(), args[:4])
    assert any("deform_conv2d" in str(n.target) for n in exported.graph.nodes)
    torch.testing.assert_close(exported.module()(*args[:4]), eager)
    compiled = torch.compile(Block(), backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(*args[:4]), eager)
