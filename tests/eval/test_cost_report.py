"""Decoder cost of live (dense and compacted) models and the written reports."""
from __future__ import annotations

import json

import pytest
import torch

from lwdvc.eval import GopSettings, decoder_cost, decoder_macs_live, evaluate_models, write_report
from lwdvc.models.complexity import decoder_macs

from .helpers import tiny_codec, tiny_sequence


def test_live_macs_match_the_meta_device_count_of_the_same_architecture():
    from lwdvc.models import build

    live = build("dcvc_hem")  # official width: compare with the registry's meta-device count
    assert decoder_macs_live(live, 64, 128) == decoder_macs("dcvc_hem", 64, 128)


def test_decoder_cost_fields():
    codec = tiny_codec()
    cost = decoder_cost(codec.inter, 64, 128, repeats=2)
    per_module = cost["macs_per_module"]
    assert cost["macs"] == sum(v for k, v in per_module.items() if k != "feature_adaptor_I")
    assert cost["parameters"] == sum(p.numel() for m in codec.inter.decoder_modules().values() for p in m.parameters())
    assert cost["latency"]["median_ms"] > 0 and cost["latency"]["repeats"] == 2
    assert cost["latency"]["threads"] >= 1
    assert torch.get_num_threads() >= 1


@pytest.mark.slow
def test_report_of_two_models(tmp_path):
    dense, other = tiny_codec(seed=0), tiny_codec(seed=1)
    sequence = tiny_sequence(1)
    report = evaluate_models({"dense": dense, "other": other}, [sequence], GopSettings(gop=1, frames=1),
                             rates=[0, 1, 2, 3], latency_repeats=1, progress=False)
    assert report["anchor"] == "dense" and set(report["bd"]) == {"other"}
    assert report["models"]["other"]["decoder"]["mac_reduction"] == pytest.approx(0.0)
    assert len(report["models"]["dense"]["rd"]) == 4
    paths = write_report(report, tmp_path, name="r")
    loaded = json.loads(open(paths["json"]).read())
    assert loaded["settings"]["sequences"][0]["name"] == "synthetic"
    text = open(paths["markdown"]).read()
    assert text.count("| dense | ") == 4 + 1 and "BD metrics against dense" in text
    with open(paths["plot"], "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="BD reference 'x' is not one of the models"):
        evaluate_models({"dense": dense}, [sequence], GopSettings(), anchor="x", progress=False)
