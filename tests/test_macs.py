"""count_macs against hand-computed formulas (convs, transposed convs, linear, sampling ops)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lwdvc_kernels.macs import count_macs

torchvision = pytest.importorskip("torchvision")


@settings(max_examples=15, deadline=None)
@given(
    cin=st.integers(1, 6), cout=st.integers(1, 6), k=st.sampled_from([1, 3]),
    stride=st.sampled_from([1, 2]), groups=st.sampled_from([1, 2]), size=st.integers(4, 9),
)
def test_conv_and_transposed_conv(cin, cout, k, stride, groups, size):
    cin, cout = cin * groups, cout * groups
    conv = nn.Conv2d(cin, cout, k, stride, groups=groups)
    x = torch.randn(2, cin, size, size)
    y = conv(x)
    expected = 2 * cout * (cin // groups) * k * k * y.shape[2] * y.shape[3]
    assert count_macs(conv, x) == expected
    deconv = nn.ConvTranspose2d(cin, cout, k, stride, groups=groups)
    # transposed conv: every input position scatters into cout/groups * k * k outputs
    assert count_macs(deconv, x) == 2 * cin * (cout // groups) * k * k * size * size


def test_linear_and_by_module():
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Sequential(nn.Linear(7, 3)))
    x = torch.randn(4, 5)
    per = count_macs(model, x, by_module=True)
    assert per["0"] == 4 * 5 * 7 and per["2.0"] == 4 * 7 * 3 and per["2"] == per["2.0"]
    assert per[""] == count_macs(model, x) == 4 * 5 * 7 + 4 * 7 * 3


class _Warp(nn.Module):
    def forward(self, x, grid):
        return F.grid_sample(x, grid, mode="bilinear", align_corners=False)


def test_grid_sample_bilinear_four_macs_per_output():
    x, grid = torch.randn(2, 3, 8, 8), torch.rand(2, 5, 6, 2) * 2 - 1
    assert count_macs(_Warp(), x, grid) == 2 * 3 * 5 * 6 * 4


def test_deform_conv_gemm_plus_sampling_and_meta():
    layer = torchvision.ops.DeformConv2d(4, 6, 3, padding=1, groups=2)
    x, offset = torch.randn(1, 4, 7, 7), torch.randn(1, 18, 7, 7)
    expected = 6 * 2 * 9 * 49 + 4 * 9 * 49 * 4
    assert count_macs(layer, x, offset) == expected
    meta_layer = layer.to("meta")
    assert count_macs(meta_layer, x.to("meta"), offset.to("meta")) == expected


def test_meta_device_conv():
    with torch.device("meta"):
        conv = nn.Conv2d(64, 64, 3, padding=1)
        x = torch.empty(1, 64, 256, 448)
    assert count_macs(conv, x) == 64 * 64 * 9 * 256 * 448


def test_rejects_non_module():
    with pytest.raises(TypeError, match="nn.Module"):
        count_macs(lambda x: x, torch.randn(1))
