"""lwdvc_kernels.nn.GDN/IGDN and MaskedConv2d against plain formulas, fx tracing, no mutation."""
from __future__ import annotations

import pytest
import torch
import torch.fx
import torch.nn.functional as F

from lwdvc_kernels.nn import GDN, IGDN, MaskedConv2d, raster_mask


def _gdn_reference(x, beta, gamma, inverse):
    pedestal = 2.0 ** -36
    beta = torch.clamp_min(beta, (1e-6 + pedestal) ** 0.5) ** 2 - pedestal
    gamma = torch.clamp_min(gamma, 2.0 ** -18) ** 2 - pedestal
    # norm[i] = sqrt(beta[i] + sum_j gamma[i, j] x[j]^2), written as an einsum
    norm = torch.sqrt(beta.view(1, -1, 1, 1) + torch.einsum("ij,njhw->nihw", gamma, x ** 2))
    return x * norm if inverse else x / norm


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_matches_formula(inverse):
    torch.manual_seed(0)
    layer = GDN(6, inverse=inverse)
    with torch.no_grad():
        layer.beta.uniform_(-0.2, 1.5)   # some below the bound
        layer.gamma.uniform_(-0.1, 0.3)
    x = torch.randn(2, 6, 5, 7)
    expected = _gdn_reference(x, layer.beta, layer.gamma, inverse)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)
    assert sorted(layer.state_dict()) == ["beta", "gamma"]
    assert layer.gamma.shape == (6, 6)


def test_igdn_is_inverse_gdn_and_traces():
    torch.manual_seed(1)
    gdn, igdn = GDN(4), IGDN(4)
    igdn.load_state_dict(gdn.state_dict())
    x = torch.randn(1, 4, 3, 3)
    assert igdn.inverse and not gdn.inverse
    traced = torch.fx.symbolic_trace(igdn)
    torch.testing.assert_close(traced(x), igdn(x))
    # with gamma = 0 and beta = 1 both are the identity
    with torch.no_grad():
        gdn.gamma.zero_(), gdn.beta.fill_(1.0)
    torch.testing.assert_close(gdn(x), x, rtol=1e-6, atol=1e-6)


def test_lower_bound_gradient_passes_towards_the_bound():
    layer = GDN(2)
    with torch.no_grad():
        layer.beta.copy_(torch.tensor([-1.0, 2.0]))
    out = layer(torch.ones(1, 2, 1, 1)).sum()
    out.backward()
    # beta[0] is below the bound: GDN output decreases as beta grows, the gradient is negative
    # there and pushes beta up, so it must flow
    assert layer.beta.grad[0] != 0 and layer.beta.grad[1] != 0


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_conv_matches_masked_weight_without_mutation(mask_type):
    torch.manual_seed(2)
    conv = MaskedConv2d(3, 5, kernel_size=5, padding=2, mask_type=mask_type)
    weight_before = conv.weight.detach().clone()
    x = torch.randn(1, 3, 6, 7)
    expected = F.conv2d(x, weight_before * conv.mask, conv.bias, padding=2)
    torch.testing.assert_close(conv(x), expected)
    assert torch.equal(conv.weight, weight_before)
    centre = conv.mask[0, 0, 2, 2].item()
    assert centre == (1.0 if mask_type == "B" else 0.0)
    assert conv.mask[:, :, 3:].sum() == 0 and conv.mask[:, :, 2, 3:].sum() == 0
    assert conv.mask[:, :, :2].min() == 1 and conv.mask[:, :, 2, :2].min() == 1
    torch.testing.assert_close(torch.fx.symbolic_trace(conv)(x), expected)


def test_masked_conv_output_is_causal():
    torch.manual_seed(3)
    conv = MaskedConv2d(2, 2, kernel_size=5, padding=2)
    x = torch.randn(1, 2, 6, 6)
    y = x.clone()
    y[..., 3, 3:] += 10.0   # change the current position and everything after it
    y[..., 4:, :] += 10.0
    torch.testing.assert_close(conv(x)[..., 3, 3], conv(y)[..., 3, 3])


def test_bad_arguments():
    with pytest.raises(ValueError, match="mask_type"):
        raster_mask((1, 1, 3, 3), "C")
    with pytest.raises(ValueError, match="positive"):
        GDN(0)
