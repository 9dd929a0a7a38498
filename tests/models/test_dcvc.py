"""DCVC against the golden outputs of the official implementation (deterministic fill)."""
from __future__ import annotations

import pytest
import torch

from lwdvc.models import build
from lwdvc.models.layers import flow_warp
from tests.models.golden import assert_close, fill_deterministic, load_reference, outputs_for, reference_meta_keys

REFERENCE = "dcvc_reference.pt"
CASES = reference_meta_keys(REFERENCE)


@pytest.fixture(scope="module")
def reference():
    return load_reference(REFERENCE)


@pytest.fixture(scope="module")
def model():
    return fill_deterministic(build("dcvc"), "dcvc").eval()


def _run_case(model, key: str, inputs: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]):
    """Our equivalent of the stored call ``meta[key]``; returns {output name: tensor}."""
    if key == "composite":
        decoded = model.decode(inputs["composite.ref_frame"], inputs["composite.mv_z_hat"],
                               inputs["composite.z_hat"], inputs["composite.mv_y_symbols"],
                               inputs["composite.y_symbols"])
        return {f"composite.{name}": value for name, value in decoded.items()}
    if key == "flow_warp":
        return {key: flow_warp(inputs["flow_warp.feature"], inputs["flow_warp.flow"])}
    if key == "mv_refine":
        return {key: model.mv_refine(inputs["ref_frame_16x32"], outputs["mvDecoder_part1"])}
    if key == "motioncompensation":
        return {key: model.motioncompensation(inputs["ref_frame_16x32"], inputs["flow_warp.flow"])}
    if key == "feature_extract":
        return {key: model.feature_extract(inputs["ref_frame_16x32"])}
    return {key: getattr(model, key)(inputs[f"{key}.x"])}


@pytest.mark.parametrize("key", CASES)
def test_matches_official(model, reference, key):
    with torch.no_grad():
        produced = _run_case(model, key, reference["inputs"], reference["outputs"])
    expected = outputs_for(reference["outputs"], key)
    assert expected, f"no stored outputs for {key}"
    for name, value in expected.items():
        assert name in produced, f"{name} not produced"
        assert_close(produced[name], value, name)


def test_cases_cover_every_decoder_module(model):
    covered = set(CASES)
    assert set(model.decoder_modules()) <= covered | {"feature_extract"}


def _raster_decode(symbols, params, context_conv, entropy_parameters):
    """Position-by-position reference of DCVC's autoregressive decoding."""
    pad = 2
    _, c, h_size, w_size = symbols.shape
    y_hat = symbols.new_zeros(1, c, h_size + 4, w_size + 4)
    scales = symbols.new_zeros(1, c, h_size, w_size)
    weight = context_conv.masked_weight()
    for h in range(h_size):
        for w in range(w_size):
            ctx = torch.nn.functional.conv2d(y_hat[:, :, h:h + 5, w:w + 5], weight, context_conv.bias)
            means, scale = entropy_parameters(torch.cat((params[:, :, h:h + 1, w:w + 1], ctx), 1)).chunk(2, 1)
            y_hat[:, :, h + pad:h + pad + 1, w + pad:w + pad + 1] = symbols[:, :, h:h + 1, w:w + 1] + means
            scales[:, :, h:h + 1, w:w + 1] = scale
    return y_hat[:, :, pad:-pad, pad:-pad], scales


def test_wavefront_decoding_equals_raster_order():
    torch.manual_seed(1)
    # float64, so that the comparison checks the decoding order and the tap gathering, not the
    # summation order of float32 matrix products (errors would propagate through the contexts).
    small = build("dcvc", width=0.125).eval().double()
    for conv in (small.auto_regressive, small.entropy_parameters):
        for p in conv.parameters():
            torch.nn.init.normal_(p, std=0.2)  # contexts matter: errors would propagate
    c = small.channel_M
    symbols = (torch.randn(1, c, 5, 9, dtype=torch.float64) * 3).round()
    params = torch.randn(1, 2 * c, 5, 9, dtype=torch.float64)
    with torch.no_grad():
        got = small._decode_autoregressive(symbols, params, small.auto_regressive, small.entropy_parameters)
        expected = _raster_decode(symbols, params, small.auto_regressive, small.entropy_parameters)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    assert float(got[0].abs().sum()) > 0 and not torch.equal(got[0], symbols)  # means were added
