"""FVC against the golden outputs of the official implementation (deterministic fill).

Tolerance: every stored output must meet both the README's rtol 1e-4 / atol 1e-5
(``golden.RTOL`` / ``golden.ATOL``) element-wise and a relative error ||ours - ref|| / ||ref||
of at most 1e-5 (measured: below 1e-6 for every case).
"""
from __future__ import annotations

import pytest
import torch

from lwdvc.models import build
from tests.models.golden import assert_close, fill_deterministic, load_reference, outputs_for, reference_meta_keys

REFERENCE = "fvc_reference.pt"
CASES = reference_meta_keys(REFERENCE)
MAX_RELATIVE_ERROR = 1e-5


@pytest.fixture(scope="module")
def reference():
    return load_reference(REFERENCE)


@pytest.fixture(scope="module")
def model():
    return fill_deterministic(build("fvc"), "fvc").eval()


def _run_case(model, key: str, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our equivalent of the stored call ``meta[key]``; returns {output name: tensor}."""
    aligner = model.aligner
    if key == "composite":
        decoded = model.decode(inputs["composite.ref_image"], inputs["composite.q_offset"],
                               inputs["composite.q_residual"], inputs["composite.q_offset_prior"],
                               inputs["composite.q_residual_prior"], with_align_image=True)
        return {f"composite.{name}": value for name, value in decoded.items()}
    if key == "dcn.offset":
        return {key: aligner.deformable_convolution.conv_offset(inputs["dcn.de_offset"])}
    if key == "deformable_convolution":
        return {key: aligner.deformable_convolution(inputs["dcn.ref_fea"], inputs["dcn.de_offset"])}
    if key == "MotionCompensation":
        return {key: aligner.motion_compensation(inputs["dcn.ref_fea"], inputs["MotionCompensation.q_offset"])}
    if key == "offset_decoder":
        return {key: aligner.offset_decoder(inputs["offset_decoder.x"])}
    if key.endswith(".parameters_net"):
        return {key: model.get_submodule(key)(inputs["parameters_net.x"])}
    if key.endswith(".calprob"):
        return {key: model.get_submodule(key.removesuffix(".calprob"))(inputs["bitest.x"])}
    return {key: model.get_submodule(key)(inputs[f"{key}.x"])}


def test_reference_has_cases():
    assert {"composite", "deformable_convolution", "MotionCompensation"} <= set(CASES)


@pytest.mark.parametrize("key", CASES)
def test_matches_official(model, reference, key):
    with torch.no_grad():
        produced = _run_case(model, key, reference["inputs"])
    expected = outputs_for(reference["outputs"], key)
    assert expected, f"no stored outputs for {key}"
    for name, value in expected.items():
        assert name in produced, f"{name} not produced"
        assert_close(produced[name], value, name)
        error = (produced[name] - value).norm() / value.norm()
        assert error <= MAX_RELATIVE_ERROR, f"{name}: relative error {error:.2e}"


def test_composite_gaussian_parameters_split(model, reference):
    """The means/scales handed to the entropy decoder follow the official split and square."""
    inputs = reference["inputs"]
    decoded = model.decode(inputs["composite.ref_image"], inputs["composite.q_offset"],
                           inputs["composite.q_residual"], inputs["composite.q_offset_prior"])
    musigma = reference["outputs"]["composite.offset_musigma"]
    channels = model.channel_offset
    assert_close(decoded["offset_means"], musigma[:, :channels], "offset_means")
    assert_close(decoded["offset_scales"], musigma[:, channels:].pow(2).clamp(1e-5, 1e10), "offset_scales")
    assert "residual_musigma" not in decoded

