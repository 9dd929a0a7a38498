"""The generic deformable convolution layer (lwdvc_kernels.nn.DeformConv2d) used by FVC.

The oracle is a plain-PyTorch re-implementation of the DCNv1 im2col sampling rule (bilinear,
zeros outside the map, a tap sampled only if -1 < y < H and -1 < x < W, offsets of tap (i, j) of
group g at channels g*2*kH*kW + 2*(i*kW + j) (dy) and +1 (dx)), written independently of
torchvision.
"""
from __future__ import annotations

import pytest
import torch
import torch.fx

from lwdvc_kernels.nn import DeformConv2d
from lwdvc_kernels.nn.deform_conv import deform_conv2d_for_layer


def _bilinear_dcn(image: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """Sample image [C, H, W] at float positions ys, xs [Ho, Wo] -> [C, Ho, Wo] (DCNv1 rule)."""
    channels, height, width = image.shape
    y0, x0 = ys.floor(), xs.floor()
    ly, lx = ys - y0, xs - x0
    inside = (ys > -1) & (ys < height) & (xs > -1) & (xs < width)
    out = image.new_zeros(channels, *ys.shape)
    for dy, wy in ((0, 1 - ly), (1, ly)):
        for dx, wx in ((0, 1 - lx), (1, lx)):
            yy, xx = (y0 + dy).long(), (x0 + dx).long()
            valid = inside & (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
            values = image[:, yy.clamp(0, height - 1), xx.clamp(0, width - 1)]
            out += values * (wy * wx * valid)
    return out


def naive_deform_conv(x, offset, weight, stride, padding, dilation):
    """DCNv1 forward by explicit sampling: x [N,C,H,W], offset [N,G*2*K,Ho,Wo] -> [N,Co,Ho,Wo]."""
    batch, channels, height, width = x.shape
    out_ch, _, kh, kw = weight.shape
    groups = offset.shape[1] // (2 * kh * kw)
    per_group = channels // groups
    out_h, out_w = offset.shape[-2:]
    base_y = torch.arange(out_h, dtype=x.dtype)[:, None] * stride - padding
    base_x = torch.arange(out_w, dtype=x.dtype)[None, :] * stride - padding
    columns = x.new_zeros(batch, channels, kh * kw, out_h, out_w)
    for n in range(batch):
        for g in range(groups):
            chans = slice(g * per_group, (g + 1) * per_group)
            for i in range(kh):
                for j in range(kw):
                    tap = i * kw + j
                    dy = offset[n, g * 2 * kh * kw + 2 * tap]
                    dx = offset[n, g * 2 * kh * kw + 2 * tap + 1]
                    ys, xs = base_y + i * dilation + dy, base_x + j * dilation + dx
                    columns[n, chans, tap] = _bilinear_dcn(x[n, chans], ys, xs)
    return torch.einsum("nckhw,ock->nohw", columns, weight.flatten(2))


def _random_layer(c_in=16, c_out=12, groups=4, stride=1, padding=1, dilation=1, seed=0):
    torch.manual_seed(seed)
    layer = DeformConv2d(c_in, c_out, 3, stride=stride, padding=padding, dilation=dilation,
                         deformable_groups=groups)
    torch.nn.init.normal_(layer.weight, std=0.2)
    torch.nn.init.normal_(layer.conv_offset.weight, std=0.3)  # offsets of a few pixels
    torch.nn.init.normal_(layer.conv_offset.bias, std=1.0)
    return layer


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 1, 1, 4), (2, 1, 1, 2), (1, 2, 2, 8), (1, 0, 1, 1)])
def test_matches_naive_dcnv1(stride, padding, dilation, groups):
    layer = _random_layer(groups=groups, stride=stride, padding=padding, dilation=dilation)
    x = torch.randn(2, 16, 9, 13)
    feature = torch.randn(2, 16, 9, 13)
    with torch.no_grad():
        offset = layer.conv_offset(feature)
        expected = naive_deform_conv(x, offset, layer.weight, stride, padding, dilation)
        actual = layer(x, feature)
    assert offset.abs().max() > 2, "offsets too small to test out-of-map sampling"
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_zero_offsets_equal_plain_convolution():
    layer = _random_layer()
    with torch.no_grad():
        layer.conv_offset.weight.zero_()
        layer.conv_offset.bias.zero_()
        x = torch.randn(1, 16, 8, 10)
        torch.testing.assert_close(layer(x, torch.randn(1, 16, 8, 10)),
                                   torch.nn.functional.conv2d(x, layer.weight, padding=1), rtol=1e-4, atol=1e-5)


def test_parameter_keys_follow_dcnv1_pack():
    layer = DeformConv2d(64, 64, 3, padding=1, deformable_groups=8)
    shapes = {key: tuple(value.shape) for key, value in layer.state_dict().items()}
    assert shapes == {"weight": (64, 64, 3, 3), "conv_offset.weight": (144, 64, 3, 3), "conv_offset.bias": (144,)}


def test_fx_trace_keeps_one_deform_conv2d_call():
    layer = _random_layer()
    traced = torch.fx.symbolic_trace(layer)
    calls = [node for node in traced.graph.nodes if node.op == "call_function"]
    assert [node.target for node in calls] == [deform_conv2d_for_layer]
    x, feature = torch.randn(1, 16, 7, 9), torch.randn(1, 16, 7, 9)
    torch.testing.assert_close(traced(x, feature), layer(x, feature))


@pytest.mark.parametrize("in_keep", [[0, 1, 4, 5, 8, 9, 12, 13], [0, 2, 3, 5, 6, 7, 9, 15], [4, 5, 6]])
def test_select_channels_equals_masked_layer(in_keep):
    """Any kept channel set (equal per group or not) reproduces the masked dense layer."""
    layer = _random_layer()
    out_keep, offset_keep = [0, 3, 4, 10], [1, 2, 3, 7, 8, 15]
    small = layer.select_channels(in_keep, out_keep, offset_keep)
    x, feature = torch.randn(2, 16, 6, 8), torch.randn(2, 16, 6, 8)
    x_masked, feature_masked = torch.zeros_like(x), torch.zeros_like(feature)
    x_masked[:, in_keep] = x[:, in_keep]
    feature_masked[:, offset_keep] = feature[:, offset_keep]
    with torch.no_grad():
        expected = layer(x_masked, feature_masked)[:, out_keep]
        actual = small(x[:, in_keep], feature[:, offset_keep])
    assert small.weight.shape == (4, len(in_keep), 3, 3)
    assert sum(small.group_sizes) == len(in_keep)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)
    traced = torch.fx.symbolic_trace(small)
    torch.testing.assert_close(traced(x[:, in_keep], feature[:, offset_keep]), actual)


def test_gradients_reach_every_parameter():
    layer = _random_layer()
    x = torch.randn(1, 16, 6, 6, requires_grad=True)
    layer(x, torch.randn(1, 16, 6, 6)).square().sum().backward()
    for name, parameter in layer.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


def test_bad_inputs_raise_clear_errors():
    layer = DeformConv2d(16, 8, 3, padding=1, deformable_groups=4)
    with pytest.raises(ValueError, match=r"x must have shape \[N, 16, H, W\]"):
        layer(torch.randn(1, 15, 5, 5), torch.randn(1, 16, 5, 5))
    with pytest.raises(ValueError, match="offset_feature"):
        layer(torch.randn(1, 16, 5, 5), torch.randn(1, 16, 5))
    with pytest.raises(ValueError, match="batch"):
        layer(torch.randn(2, 16, 5, 5), torch.randn(1, 16, 5, 5))
    with pytest.raises(TypeError, match="floating point"):
        layer(torch.ones(1, 16, 5, 5, dtype=torch.int64), torch.randn(1, 16, 5, 5))
    with pytest.raises(ValueError, match="not divisible by deformable_groups"):
        DeformConv2d(10, 8, 3, deformable_groups=4)
    with pytest.raises(ValueError, match="group_sizes"):
        DeformConv2d(10, 8, 3, deformable_groups=2, group_sizes=(4, 5))
    with pytest.raises(ValueError, match="in_keep"):
        layer.select_channels(in_keep=[3, 1])


def test_in_place_pruning_with_keep_input_channels():
    """A handler that slices the parameters in place and records the kept inputs."""
    layer = _random_layer()
    reference = layer.select_channels([0, 1, 2, 6, 11], [2, 5])
    with torch.no_grad():
        layer.weight = torch.nn.Parameter(layer.weight[[2, 5]][:, [0, 1, 2, 6, 11]])
    assert (layer.in_channels, layer.out_channels) == (5, 2)
    with pytest.raises(ValueError, match="keep_input_channels"):
        layer(torch.randn(1, 5, 6, 6), torch.randn(1, 16, 6, 6))
    layer.keep_input_channels([0, 1, 2, 6, 11])
    assert layer.group_sizes == reference.group_sizes == (3, 1, 1, 0)
    x, feature = torch.randn(1, 5, 6, 6), torch.randn(1, 16, 6, 6)
    torch.testing.assert_close(layer(x, feature), reference(x, feature))


def test_builds_on_meta_device():
    with torch.device("meta"):
        layer = DeformConv2d(16, 8, 3, padding=1, deformable_groups=4, group_sizes=(5, 3, 4, 4))
    assert layer.weight.is_meta and layer.channel_group.is_meta
    assert layer(torch.empty(1, 16, 5, 5, device="meta"), torch.empty(1, 16, 5, 5, device="meta")).shape == (1, 8, 5, 5)
