"""FVC decoder MACs per 1920x1088 P-frame against the reference table (golden-data README).

The reference rows were measured on the official model (FlopCounterMode; the DCN core added
analytically as GEMM + 4 MACs per sampled tap) and rounded to 0.01 GMAC; ours must agree within
1% per row and in total.
"""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("lwdvc_kernels.macs")

from lwdvc.models import build  # noqa: E402
from lwdvc.models.complexity import decoder_macs, frame_total  # noqa: E402
from lwdvc_kernels import count_macs  # noqa: E402

# GMACs from /work/shared/reference/README.md ("fvc" table); the DCN row is split there into
# its offset conv (43.32) and the deformable core (20.46), the refinement into conv1 + conv2.
REFERENCE_ROWS = {
    "Encoder": 118.02,
    "OffsetPriorDecoder": 5.07,
    "EntropyCoding_offsetf.parameters_net": 17.11,
    "aligner.offset_decoder": 187.84,
    "aligner.deformable_convolution": 43.32 + 20.46,
    "aligner.refine_conv1+2": 57.76,
    "resPriorDecoder": 5.07,
    "EntropyCoding_residualf.parameters_net": 17.11,
    "resDecoder": 187.84,
    "Decoder": 118.02,
}
REFERENCE_TOTAL = 777.61


@pytest.fixture(scope="module")
def per_module():
    return decoder_macs("fvc", 1088, 1920)


def _rows(per_module: dict[str, int]) -> dict[str, float]:
    """Reference rows; the aligner (one decoder module) is split into its layers."""
    rows = {name: macs / 1e9 for name, macs in per_module.items() if name != "aligner"}
    with torch.device("meta"):
        model = build("fvc")
    by_layer = count_macs(model.aligner, *model.decoder_example_inputs(1088, 1920)["aligner"], by_module=True)
    assert by_layer[""] == per_module["aligner"]
    rows["aligner.offset_decoder"] = by_layer["offset_decoder"] / 1e9
    rows["aligner.deformable_convolution"] = by_layer["deformable_convolution"] / 1e9
    rows["aligner.refine_conv1+2"] = (by_layer["refine_conv1"] + by_layer["refine_conv2"]) / 1e9
    return rows


def test_total_matches_reference_within_one_percent(per_module):
    total = frame_total("fvc", per_module) / 1e9
    assert abs(total - REFERENCE_TOTAL) <= 0.01 * REFERENCE_TOTAL, f"{total:.2f} vs {REFERENCE_TOTAL} GMACs"


def test_every_row_matches_reference(per_module):
    rows = _rows(per_module)
    assert set(rows) == set(REFERENCE_ROWS)
    for name, expected in REFERENCE_ROWS.items():
        assert abs(rows[name] - expected) <= 0.01 * expected, f"{name}: {rows[name]:.3f} vs {expected}"


def test_deformable_core_counts_gemm_and_sampling():
    """The DCN core (without its offset conv) is Cout*Cin*9*H*W + Cin*9*H*W*4 MACs."""
    with torch.device("meta"):
        model = build("fvc")
    examples = model.decoder_example_inputs(1088, 1920)
    ref_feature = examples["aligner"][0]
    counts = count_macs(model.aligner.deformable_convolution, ref_feature, ref_feature, by_module=True)
    positions = 544 * 960
    assert counts[""] - counts["conv_offset"] == 64 * 64 * 9 * positions + 64 * 9 * positions * 4
    assert abs(counts["conv_offset"] / 1e9 - 43.32) <= 0.01


def _decoder_total(**config) -> int:
    with torch.device("meta"):
        model = build("fvc", **config)
    examples = model.decoder_example_inputs(1088, 1920)
    return sum(count_macs(module, *examples[name]) for name, module in model.decoder_modules().items())


def test_width_scaling_reduces_macs():
    full, quarter = _decoder_total(), _decoder_total(width=0.25)
    assert abs(full / 1e9 - REFERENCE_TOTAL) <= 0.01 * REFERENCE_TOTAL
    assert full / 20 < quarter < full / 10  # convs scale with width squared, the frame convs with width
