"""DCVC against the golden outputs of the official implementation (deterministic fill)."""
from __future__ import annotations

import pytest
import torch

from tests.models.golden import (assert_close, fill_deterministic, load_reference, outputs_for,
                    reference_meta_keys)
from lwdvc.models import build
from lwdvc.models.layers import flow_warp

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
