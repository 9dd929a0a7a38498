"""Transposed convs rewritten as sub-pixel convs: exact equivalence, refusals, use in optimize."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lwdvc_kernels.optimization import optimize
from lwdvc_kernels.optimization.subpixel import subpixel_conv, subpixel_slower_reason, subpixel_unsupported_reason

# (cin, cout, kernel, stride, padding, output_padding, bias)
EXACT = [
    (6, 3, 5, 2, 2, 1, True),     # the common 5x5 stride-2 decoder layer -> 3x3 conv
    (5, 4, 3, 2, 1, 1, True),     # 3x3 stride 2 (asymmetric taps, zero-padded to 3x3)
    (4, 7, 4, 2, 1, 0, False),
    (3, 2, 2, 2, 0, 0, True),     # pure pixel shuffle of a 1x1 conv
    (4, 3, 5, 3, 1, 0, True),     # stride 3
    (4, 5, (5, 3), 2, (2, 1), (1, 1), True),  # different kernel per axis
]


@pytest.mark.parametrize("case", EXACT, ids=[f"k{c[2]}s{c[3]}p{c[4]}op{c[5]}" for c in EXACT])
def test_shuffled_conv_equals_transposed_conv(case):
    cin, cout, kernel, stride, padding, output_padding, bias = case
    torch.manual_seed(0)
    layer = nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding, bias=bias).double().eval()
    x = torch.randn(2, cin, 5, 7, dtype=torch.float64)
    assert subpixel_unsupported_reason(layer) is None
    conv = subpixel_conv(layer)
    assert conv.stride == (1, 1) and conv.out_channels == cout * stride * stride
    with torch.no_grad():
        want = layer(x)
        got = F.pixel_shuffle(conv(x), stride)
    assert got.shape == want.shape == (2, cout, 5 * stride, 7 * stride)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "layer,match",
    [
        (nn.ConvTranspose2d(4, 4, 5, 2, 2, 1, groups=2), "groups"),
        (nn.ConvTranspose2d(4, 4, 5, 2, 2, 1, dilation=2), "dilation"),
        (nn.ConvTranspose2d(4, 4, 5, (2, 1), 2, (1, 0)), "stride"),
        (nn.ConvTranspose2d(4, 4, 3, 1, 1), "stride"),
        (nn.ConvTranspose2d(4, 4, 3, 2, 1, 0), "output is not stride x input"),
    ],
    ids=["groups", "dilation", "unequal-stride", "stride-1", "odd-output"],
)
def test_refuses_layers_it_cannot_rewrite(layer, match):
    reason = subpixel_unsupported_reason(layer)
    assert reason is not None and match in reason
    with pytest.raises(ValueError, match=match):
        subpixel_conv(layer)


@pytest.mark.parametrize(
    "layer,match",
    [
        (nn.ConvTranspose2d(8, 16, 5, 2, 2, 1), "16 output channels"),
        (nn.ConvTranspose2d(8, 2, 3, 2, 1, 1), "4.00x the MACs"),
    ],
    ids=["many-outputs", "3x3-stride-2"],
)
def test_keeps_transposed_convs_where_the_rewrite_is_slower(layer, match):
    assert subpixel_unsupported_reason(layer) is None
    reason = subpixel_slower_reason(layer)
    assert reason is not None and match in reason
    assert subpixel_slower_reason(nn.ConvTranspose2d(8, 3, 5, 2, 2, 1)) is None


class _Decoder(nn.Module):
    """Transposed conv + LeakyReLU + residual, then ones the rewrite refuses (odd output size)
    or keeps (more MACs than it saves)."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(8, 6, 5, 2, 2, 1)
        self.odd = nn.ConvTranspose2d(6, 3, 3, 2, 1, 0)
        self.dense = nn.ConvTranspose2d(3, 2, 3, 2, 1, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.dense(self.odd(F.leaky_relu(self.up(x), 0.1) + skip))


def test_optimize_fuses_transposed_convs_it_can_rewrite():
    torch.manual_seed(1)
    model = _Decoder().eval()
    inputs = (torch.randn(1, 8, 6, 10), torch.randn(1, 6, 12, 20))
    fast, report = optimize(model, inputs, return_report=True)
    assert any("up: transposed conv as sub-pixel conv + act=leaky_relu + shuffle x2 + +residual" in line
               for line in report.fused), report.fused
    assert any(line.startswith("odd: ConvTranspose2d kept (output is not") for line in report.skipped), report.skipped
    assert any(line.startswith("dense: ConvTranspose2d kept (the sub-pixel conv would need") for line in report.skipped)
    with torch.no_grad():
        want = model(*inputs)
        got = fast(*inputs)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
