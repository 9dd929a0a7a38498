"""deform_conv2d inside the engine: DeformConv2d's choice of kernel, autocast, channel analysis,
compaction and MAC counting of the op."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from lwdvc_kernels import ops
from lwdvc_kernels.compaction import channel_groups, compact
from lwdvc_kernels.macs import count_macs
from lwdvc_kernels.nn import DeformConv2d

needs_extension = pytest.mark.skipif(ops.EXTENSION is None, reason="needs the compiled extension")


class _OpNames(TorchDispatchMode):
    """Records the qualified names of the ops that run."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.name())
        return func(*args, **(kwargs or {}))


def _layer(cin=16, cout=12, groups=4, seed=0, **kwargs) -> DeformConv2d:
    torch.manual_seed(seed)
    layer = DeformConv2d(cin, cout, 3, padding=1, deformable_groups=groups, **kwargs)
    nn.init.normal_(layer.weight, std=0.2)
    nn.init.normal_(layer.conv_offset.weight, std=0.3)
    nn.init.normal_(layer.conv_offset.bias, std=1.0)
    return layer


@needs_extension
def test_layer_uses_the_cpu_kernel_for_inference_and_torchvision_for_training():
    layer = _layer()
    x, feature = torch.randn(1, 16, 7, 9), torch.randn(1, 16, 7, 9)
    with torch.no_grad(), _OpNames() as inference:
        fast = layer(x, feature)
    with _OpNames() as training:
        slow = layer(x, feature)
    assert "lwdvc::deform_conv2d" in inference.names and "torchvision::deform_conv2d" not in inference.names
    assert "torchvision::deform_conv2d" in training.names and "lwdvc::deform_conv2d" not in training.names
    torch.testing.assert_close(fast, slow.detach(), rtol=1e-5, atol=1e-5)


@needs_extension
def test_layer_with_uneven_groups_and_channels_last_input():
    """A compacted layer (uneven deformable groups, odd counts) in channels_last, as optimize runs it."""
    layer = _layer().select_channels([0, 2, 3, 5, 6, 7, 9, 15], [0, 3, 4, 10, 11])
    x, feature = torch.randn(2, 8, 6, 8), torch.randn(2, 16, 6, 8)
    with torch.no_grad():
        offset = layer.conv_offset(feature)
        offset = offset.unflatten(1, (4, -1)).index_select(1, layer.channel_group).flatten(1, 2)
        want = ops.deform_conv2d(x, offset, layer.weight, None, 1, 1, backend="reference")
        layer = layer.to(memory_format=torch.channels_last)
        got = layer(x.contiguous(memory_format=torch.channels_last),
                    feature.contiguous(memory_format=torch.channels_last))
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_layer_under_cpu_autocast_accepts_offsets_of_another_dtype():
    layer = _layer()
    x, feature = torch.randn(1, 16, 7, 9), torch.randn(1, 16, 7, 9)
    with torch.no_grad():
        want = layer(x, feature)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = layer(x, feature)  # conv_offset gives bfloat16 offsets, x stays float32
    assert got.dtype == (torch.bfloat16 if ops.EXTENSION is not None else torch.float32)
    error = float((got.float() - want).norm() / want.norm())
    assert error < 3e-2  # offsets, input and columns in bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):  # training under autocast: torchvision in float32
        trained = layer(x, feature)
    assert trained.dtype == torch.float32
    trained.sum().backward()
    assert layer.weight.grad is not None
    with pytest.raises(ValueError, match="offset_feature is torch.bfloat16"):
        layer(x, feature.bfloat16())  # no autocast: mixed dtypes are an error


class _Functional(nn.Module):
    """conv -> deform_conv2d (functional, engine op) -> conv."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.off = nn.Conv2d(3, 2 * 2 * 9, 3, padding=1)
        self.weight = nn.Parameter(0.2 * torch.randn(6, 8, 3, 3))
        self.b = nn.Conv2d(6, 2, 1)

    def forward(self, x):
        y = ops.deform_conv2d(self.a(x), self.off(x), self.weight, None, 1, 1)
        return self.b(torch.relu(y))


def test_functional_op_is_analysed_and_compacted():
    torch.manual_seed(0)
    model = _Functional().eval()
    x = torch.randn(1, 3, 6, 7)
    analysis = channel_groups(model, x)
    names = {g.name: g for g in analysis.groups}
    roles = {(m.module, m.tensor, m.dim): m.role for g in analysis.groups for m in g.members}
    assert roles[("", "weight", 0)] == "producer" and roles[("", "weight", 1)] == "consumer"
    assert names["a"].prunable and not names["off"].prunable
    # Offset groups must stay even: channel j of both groups is one unit of group "a".
    assert names["a"].size == 4
    keep_a = torch.tensor([True, False, True, True])
    keep_w = torch.tensor([True, False, True, True, False, True])
    masks = {"a": keep_a, names_of_weight(analysis): keep_w}
    small = compact(model, x, masks=masks)
    assert small.weight.shape == (4, 6, 3, 3)
    with torch.no_grad():
        model.a.weight[~keep_a.repeat(2)] = 0
        model.a.bias[~keep_a.repeat(2)] = 0
        model.weight[~keep_w] = 0
        torch.testing.assert_close(small(x), model(x), rtol=1e-5, atol=1e-5)


def names_of_weight(analysis) -> str:
    """Name of the group whose producer is the functional call's weight (dim 0)."""
    for g in analysis.groups:
        if any(m.module == "" and m.tensor == "weight" and m.dim == 0 and m.role == "producer" for m in g.members):
            return g.name
    raise AssertionError("no group produced by the functional weight")


def test_count_macs_counts_the_op_like_torchvision():
    layer = _layer().eval()
    x = torch.randn(1, 16, 10, 12)
    with torch.device("meta"):
        meta_layer = _layer()
    cpu = count_macs(layer, x, x)
    assert cpu == count_macs(meta_layer, x.to("meta"), x.to("meta"))
    dcn = 12 * 16 * 9 * 120 + 16 * 9 * 120 * 4  # GEMM + bilinear sampling
    offsets = 72 * 16 * 9 * 120
    assert cpu == dcn + offsets


@needs_extension
def test_optimize_runs_the_layer_in_bfloat16_channels_last():
    from lwdvc_kernels.optimization import optimize
    from lwdvc_kernels.optimization.cpu import Float32Island
    from lwdvc_kernels.optimization.optimizer import DTYPE_TOLERANCE, relative_error

    class Aligner(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dcn = _layer(cin=8, cout=8, groups=2, offset_in_channels=8)
            self.conv = nn.Conv2d(8, 5, 3, padding=1)

        def forward(self, x, feature):
            return self.conv(self.dcn(x, feature))

    model = Aligner().eval()
    inputs = (torch.randn(1, 8, 9, 11), torch.randn(1, 8, 9, 11))
    fast = optimize(model, inputs, dtype=torch.bfloat16)
    assert not any(isinstance(m, Float32Island) for m in fast.modules())
    dcn = next(m for m in fast.modules() if isinstance(m, DeformConv2d))
    assert dcn.weight.dtype == torch.bfloat16 and dcn.weight.is_contiguous(memory_format=torch.channels_last)
    with _OpNames() as seen:
        fast(*inputs)
    assert "lwdvc::deform_conv2d" in seen.names
    assert relative_error(model, fast, inputs) <= DTYPE_TOLERANCE[torch.bfloat16]


def test_functional_op_with_uneven_groups_leaves_channels_uncoupled():
    class Uneven(_Functional):
        def forward(self, x):
            y = ops.deform_conv2d(self.a(x), self.off(x), self.weight, None, 1, 1, offset_group_sizes=(3, 5))
            return self.b(torch.relu(y))

    torch.manual_seed(0)
    model = Uneven().eval()
    x = torch.randn(1, 3, 6, 7)
    group = {g.name: g for g in channel_groups(model, x).groups}["a"]
    assert group.prunable and group.size == 8  # every channel on its own, not coupled across groups


@needs_extension
def test_layer_compiles_and_exports_with_the_op():
    layer = _layer().eval().select_channels([0, 1, 2, 5, 6, 9, 12, 13, 14], None)  # uneven groups
    x, feature = torch.randn(1, 9, 7, 9), torch.randn(1, 16, 7, 9)
    with torch.no_grad():
        want = layer(x, feature)
        compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
        torch.testing.assert_close(compiled(x, feature), want)
        exported = torch.export.export(layer, (x, feature))
        assert "lwdvc.deform_conv2d.default" in {str(n.target) for n in exported.graph.nodes}
        torch.testing.assert_close(exported.module()(x, feature), want)
