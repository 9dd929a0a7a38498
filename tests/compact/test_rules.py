"""Individual channel rules: coupling, fixing, zero handling, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lwdvc_kernels.compaction import UnsupportedOpError, channel_groups, compact
from lwdvc_kernels.macs import count_macs


class _Seq(nn.Module):
    def __init__(self, fn, **layers):
        super().__init__()
        for k, v in layers.items():
            setattr(self, k, v)
        self.fn = fn

    def forward(self, x):
        return self.fn(self, x)


def _names(analysis):
    return {g.name: g for g in analysis.groups}


def test_residual_stream_couples_blocks_and_outputs_are_fixed():
    m = _Seq(lambda s, x: s.c(s.a(x) + s.b(s.a(x))), a=nn.Conv2d(3, 8, 1), b=nn.Conv2d(8, 8, 1), c=nn.Conv2d(8, 4, 1))
    groups = _names(channel_groups(m, torch.randn(1, 3, 4, 4)))
    assert set(groups) == {"a", "c"}
    roles = {(mb.module, mb.tensor, mb.dim): mb.role for mb in groups["a"].members}
    assert roles[("b", "weight", 0)] == "producer" and roles[("b", "weight", 1)] == "consumer"
    assert roles[("c", "weight", 1)] == "consumer"
    assert not groups["c"].prunable and "module output" in groups["c"].reasons[0]


def test_sigmoid_before_conv_fixes_but_relu_does_not():
    for act, prunable in ((torch.sigmoid, False), (F.relu, True), (lambda t: t + 1.0, False),
                          (lambda t: t * 3.0, True)):
        m = _Seq(lambda s, x, act=act: s.b(act(s.a(x))), a=nn.Conv2d(3, 6, 1), b=nn.Conv2d(6, 2, 1))
        assert _names(channel_groups(m, torch.randn(1, 3, 4, 4)))["a"].prunable is prunable


def test_se_gate_sigmoid_is_absorbed_by_multiplication():
    def fwd(s, x):
        f = s.a(x)
        w = torch.sigmoid(s.fc(f.mean((2, 3))))
        return s.b(f * w[:, :, None, None])

    m = _Seq(fwd, a=nn.Conv2d(3, 6, 1), fc=nn.Linear(6, 6), b=nn.Conv2d(6, 2, 1))
    x = torch.randn(2, 3, 4, 4)
    analysis = channel_groups(m, x)
    assert analysis["a"].prunable and analysis["a"].size == 6
    mask = torch.tensor([True, False, True, False, False, True])
    small = compact(m, x, masks={"a": mask})
    assert small.fc.weight.shape == (3, 3) and small.b.weight.shape == (2, 3, 1, 1)


def test_batchnorm_with_affine_is_folded_as_producer():
    m = _Seq(lambda s, x: s.b(s.bn(s.a(x))), a=nn.Conv2d(3, 6, 1), bn=nn.BatchNorm2d(6), b=nn.Conv2d(6, 2, 1)).eval()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-1, 1)
        m.bn.bias.uniform_(-1, 1)
    x = torch.randn(1, 3, 4, 4)
    analysis = channel_groups(m, x)
    roles = {(mb.module, mb.tensor): mb.role for mb in analysis["a"].members}
    assert roles[("bn", "bias")] == "producer" and roles[("bn", "running_mean")] == "passive"
    small = compact(m, x, masks={"a": torch.tensor([True, False] * 3)})
    assert small.bn.num_features == 3 and small.bn.running_var.shape == (3,)


def test_batchnorm_without_affine_fixes_channels():
    m = _Seq(lambda s, x: s.b(s.bn(s.a(x))), a=nn.Conv2d(3, 6, 1), bn=nn.BatchNorm2d(6, affine=False),
             b=nn.Conv2d(6, 2, 1)).eval()
    with torch.no_grad():
        m.bn.running_mean.uniform_(0.5, 1)
    assert not channel_groups(m, torch.randn(1, 3, 4, 4))["a"].prunable


def test_pixel_shuffle_keeps_r_squared_sources_together():
    m = _Seq(lambda s, x: s.b(F.pixel_shuffle(s.a(x), 2)), a=nn.Conv2d(3, 12, 1), b=nn.Conv2d(3, 2, 1))
    x = torch.randn(1, 3, 4, 4)
    analysis = channel_groups(m, x)
    producer = next(mb for mb in analysis["a"].members if mb.tensor == "weight" and mb.dim == 0)
    assert analysis["a"].size == 3 and producer.units.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    small = compact(m, x, masks={"a": torch.tensor([True, False, True])})
    assert small.a.out_channels == 8 and small.b.in_channels == 2


def test_grouped_and_depthwise_convs():
    m = _Seq(lambda s, x: s.c(s.dw(s.g(s.a(x)))), a=nn.Conv2d(3, 8, 1), g=nn.Conv2d(8, 8, 3, padding=1, groups=2),
             dw=nn.Conv2d(8, 16, 3, padding=1, groups=8), c=nn.Conv2d(16, 2, 1))
    x = torch.randn(1, 3, 6, 6)
    analysis = channel_groups(m, x)
    assert analysis["a"].size == 4  # input channel j of both conv groups coupled
    assert analysis["g"].size == 4  # and the depthwise layer (multiplier 2) passes them through
    small, keep = compact(m, x, masks={"a": torch.tensor([True, False, True, True]),
                                       "g": torch.tensor([False, True, True, False])}, return_masks=True)
    assert small.g.groups == 2 and small.g.in_channels == 6 and small.g.out_channels == 4
    assert small.dw.groups == 4 and small.dw.out_channels == 8
    assert count_macs(small, x) == analysis.macs(keep)


def test_concat_offsets():
    def fwd(s, x):
        y = torch.cat([s.a(x), x, s.b(x)], dim=1)
        return s.c(F.relu(y))

    m = _Seq(fwd, a=nn.Conv2d(3, 4, 1), b=nn.Conv2d(3, 4, 1), c=nn.Conv2d(11, 2, 1))
    x = torch.randn(1, 3, 4, 4)
    analysis = channel_groups(m, x)
    c_a = next(mb for mb in analysis["a"].members if mb.module == "c")
    c_b = next(mb for mb in analysis["b"].members if mb.module == "c")
    assert c_a.positions.tolist() == [0, 1, 2, 3] and c_b.positions.tolist() == [7, 8, 9, 10]
    small = compact(m, x, masks={"a": torch.tensor([1, 0, 1, 0]).bool(), "b": torch.tensor([0, 1, 1, 0]).bool()})
    assert small.c.in_channels == 7


def test_uneven_split_fixes_but_chunk_couples_halves():
    def uneven(s, x):
        p, q = torch.cat([s.a(x), s.b(x)], dim=1).split([3, 5], dim=1)
        return s.c(p).sum(1, keepdim=True) + s.d(q)

    def even(s, x):
        p, q = torch.cat([s.a(x), s.b(x)], dim=1).chunk(2, dim=1)
        return s.c(p) + s.d(q)

    layers = dict(a=nn.Conv2d(3, 4, 1), b=nn.Conv2d(3, 4, 1), c=nn.Conv2d(4, 2, 1), d=nn.Conv2d(4, 2, 1))
    layers_uneven = dict(layers, c=nn.Conv2d(3, 2, 1), d=nn.Conv2d(5, 2, 1))
    x = torch.randn(1, 3, 4, 4)
    fixed = channel_groups(_Seq(uneven, **layers_uneven), x)
    assert not fixed["a"].prunable and "fixed positions" in fixed["a"].reasons[0]
    m = _Seq(even, **layers)
    analysis = channel_groups(m, x)
    assert [g.name for g in analysis.prunable] == ["a"] and analysis["a"].size == 4
    small = compact(m, x, masks={"a": torch.tensor([1, 0, 0, 1]).bool()})
    assert small.a.out_channels == small.b.out_channels == small.c.in_channels == 2


def test_unknown_op_raises_with_name_and_location():
    class Inner(nn.Module):
        def forward(self, x):
            return torch.cumsum(x, dim=1)

    m = _Seq(lambda s, x: s.b(s.inner(s.a(x))), a=nn.Conv2d(3, 4, 1), inner=Inner(), b=nn.Conv2d(4, 2, 1))
    with pytest.raises(UnsupportedOpError, match=r"cumsum.*inner"):
        channel_groups(m, torch.randn(1, 3, 4, 4))


@pytest.mark.parametrize("op, name", [(lambda y: y % 2.0, "remainder"), (lambda y: y * (y > 0), "gt"),
                                      (lambda y: y // 2.0, "floordiv")])
def test_unknown_op_in_operator_syntax_raises_the_named_error(op, name):
    m = _Seq(lambda s, x: s.b(op(s.a(x))), a=nn.Conv2d(3, 4, 1), b=nn.Conv2d(4, 2, 1))
    with pytest.raises(UnsupportedOpError, match=f"no rule for op {name!r}"):
        channel_groups(m, torch.randn(1, 3, 4, 4))
    assert issubclass(UnsupportedOpError, NotImplementedError) and not issubclass(UnsupportedOpError, TypeError)


@pytest.mark.parametrize("op", [lambda y: y @ y, lambda y: y @ torch.ones(4, 4), lambda y: y.transpose(-1, -2) @ y])
def test_products_over_spatial_dims_carry_the_channels(op):
    torch.manual_seed(0)
    m = _Seq(lambda s, x: s.b(op(s.a(x))), a=nn.Conv2d(3, 4, 1), b=nn.Conv2d(4, 2, 1)).eval()
    x = torch.randn(1, 3, 4, 4)
    analysis = channel_groups(m, x)
    assert [g.name for g in analysis.prunable] == ["a"]
    small = compact(m, x, masks={"a": torch.tensor([1, 0, 1, 1]).bool()}, verify=True)
    assert small.b.in_channels == 3 and count_macs(small, x) == analysis.macs({"a": 3})


@pytest.mark.parametrize("op, name", [
    (lambda y: y + torch.from_numpy(y.numpy()), "numpy"),
    (lambda y: y + torch.as_tensor(np.asarray(y)), "__array__"),
    (lambda y: y + torch.tensor(y.tolist()), "tolist"),
    (lambda y: y * y.sum().item(), "item"),
    (lambda y: y * float(y.mean()), "__float__"),
    (lambda y: y * (2 if y.sum() > 0 else 3), "__bool__"),
])
def test_values_leaving_torch_raise_the_named_error(op, name):
    m = _Seq(lambda s, x: s.b(op(s.a(x))), a=nn.Conv2d(3, 4, 1), b=nn.Conv2d(4, 2, 1))
    x = torch.randn(1, 3, 4, 4)
    with pytest.raises(UnsupportedOpError, match=f"cannot follow {name!r}"):
        channel_groups(m, x)
    with pytest.raises(UnsupportedOpError, match=f"cannot follow {name!r}"):
        compact(m, x, masks={"a": torch.tensor([1, 0, 0, 1]).bool()}, verify=False)


def test_values_of_parameters_and_shapes_may_leave_torch():
    m = _Seq(lambda s, x: s.b(s.a(x) * s.scale.item() * float(x.shape[1])),
             a=nn.Conv2d(3, 4, 1), b=nn.Conv2d(4, 2, 1))
    m.scale = nn.Parameter(torch.tensor(2.0))
    assert [g.name for g in channel_groups(m, torch.randn(1, 3, 4, 4)).prunable] == ["a"]


def test_conv_weight_computed_from_a_parameter_is_followed_to_it():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 3, 1, 1))
            self.out = nn.Conv2d(4, 2, 1)

        def forward(self, x):
            return self.out(torch.relu(F.conv2d(x, self.w * 2)))

    group = channel_groups(Scaled(), torch.randn(1, 3, 4, 4))["w"]
    assert group.size == 4 and not bool(group.fixed.any())
    assert {(m.module, m.tensor, m.dim, m.role) for m in group.members} == {
        ("", "w", 0, "producer"), ("out", "weight", 1, "consumer")}


def test_learnt_bias_parameter_is_sliced_and_masked():
    class Biased(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 1, bias=False)
            self.shift = nn.Parameter(torch.randn(1, 4, 1, 1))
            self.b = nn.Conv2d(4, 2, 1)

        def forward(self, x):
            return self.b(self.a(x) + self.shift)

    x = torch.randn(1, 3, 4, 4)
    m = Biased()
    roles = {(mb.module, mb.tensor): mb.role for mb in channel_groups(m, x)["a"].members}
    assert roles[("", "shift")] == "producer"
    small = compact(m, x, masks={"a": torch.tensor([1, 0, 0, 1]).bool()})
    assert small.shift.shape == (1, 2, 1, 1)


def test_flow_for_grid_sample_is_never_pruned():
    def fwd(s, x):
        flow = s.flow(x)
        grid = flow.permute(0, 2, 3, 1).tanh()
        return s.out(F.grid_sample(s.feat(x), grid, align_corners=False))

    m = _Seq(fwd, flow=nn.Conv2d(3, 2, 1), feat=nn.Conv2d(3, 5, 1), out=nn.Conv2d(5, 1, 1))
    x = torch.randn(1, 3, 4, 4)
    analysis = channel_groups(m, x)
    assert not analysis["flow"].prunable and analysis["feat"].prunable
    assert analysis.dense_macs == count_macs(m, x)
    assert analysis.macs({"feat": 2}) == count_macs(m, x) - 3 * 16 * (3 + 4 + 1)
