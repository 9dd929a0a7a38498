"""DCVC-HEM (DMC and the intra model) against the official golden outputs."""
from __future__ import annotations

import pytest
import torch

from lwdvc.models import build
from lwdvc.models.layers import flow_warp
from tests.models.golden import assert_close, fill_deterministic, load_reference, outputs_for, reference_meta_keys

REFERENCE = "dcvc_hem_reference.pt"
P_CASES = reference_meta_keys(REFERENCE, exclude=("intra.",))
INTRA_CASES = reference_meta_keys(REFERENCE, prefix="intra.")
Q_STEP_OUTPUTS = {"get_curr_y_q(1.25)": ("get_curr_y_q", 1.25),
                  "get_curr_mv_y_q(0.75)": ("get_curr_mv_y_q", 0.75)}


@pytest.fixture(scope="module")
def reference():
    return load_reference(REFERENCE)


@pytest.fixture(scope="module")
def model():
    return fill_deterministic(build("dcvc_hem"), "dcvc_hem").eval()


@pytest.fixture(scope="module")
def intra():
    return fill_deterministic(build("dcvc_hem_intra"), "dcvc_hem_intra").eval()


def _as_dict(key, value):
    if isinstance(value, tuple):
        return {f"{key}.{i}": v for i, v in enumerate(value)}
    return {key: value}


def _run_p_case(model, key, inputs, meta):
    if key.startswith("composite_"):
        dpb = {"ref_frame": inputs[f"{key}.ref_frame"]}
        for name in ("ref_feature", "ref_y", "ref_mv_y"):
            dpb[name] = inputs.get(f"{key}.{name}")
        out = model.decode(dpb, inputs[f"{key}.mv_z_hat"], inputs[f"{key}.z_hat"],
                           (inputs[f"{key}.mv_y_q_r_0"], inputs[f"{key}.mv_y_q_r_1"]),
                           (inputs[f"{key}.y_q_r_0"], inputs[f"{key}.y_q_r_1"]),
                           mv_y_q_scale=meta[key]["mv_y_q_scale"], y_q_scale=meta[key]["y_q_scale"])
        return {f"{key}.{name}": value for name, value in out.items() if name != "dpb"}
    if key == "flow_warp":
        return {key: flow_warp(inputs["flow_warp.feature"], inputs["flow_warp.flow"])}
    if key.startswith("motion_compensation_"):
        dpb = {"ref_frame": inputs["ref_frame"],
               "ref_feature": inputs["ref_feature"] if key.endswith("Pref") else None}
        return _as_dict(key, model.motion_compensation(dpb, inputs["flow_warp.flow"]))
    args = [inputs[name] for name in meta[key]["inputs"]]
    return _as_dict(key, getattr(model, key)(*args))


@pytest.mark.parametrize("key", P_CASES)
def test_dmc_matches_official(model, reference, key):
    with torch.no_grad():
        produced = _run_p_case(model, key, reference["inputs"], reference["meta"])
    expected = outputs_for(reference["outputs"], key)
    assert expected, f"no stored outputs for {key}"
    for name, value in expected.items():
        assert_close(produced[name], value, name)


@pytest.mark.parametrize("output", sorted(Q_STEP_OUTPUTS))
def test_quantisation_steps(model, reference, output):
    method, scale = Q_STEP_OUTPUTS[output]
    with torch.no_grad():
        assert_close(getattr(model, method)(scale), reference["outputs"][output], output)


@pytest.mark.parametrize("key", INTRA_CASES)
def test_intra_matches_official(intra, reference, key):
    inputs, meta = reference["inputs"], reference["meta"]
    with torch.no_grad():
        if key == "intra.composite":
            out = intra.decode(inputs["intra.composite.z_hat"],
                               (inputs["intra.composite.y_q_r_0"], inputs["intra.composite.y_q_r_1"]),
                               q_scale=meta[key]["q_scale"])
            produced = {f"{key}.{name}": value for name, value in out.items()}
        else:
            module = getattr(intra, key.removeprefix("intra."))
            produced = {key: module(inputs[f"{key}.x"])}
    expected = outputs_for(reference["outputs"], key)
    assert expected
    for name, value in expected.items():
        assert_close(produced[name], value, name)
