"""Shipped-weights format: save/load round trips (dense fp16, compacted) and the shipped teacher."""
from __future__ import annotations

import json

import pytest
import torch

from lwdvc.models import VideoCodec, available_pretrained, pretrained
from lwdvc.models.pretrained import WEIGHTS_DIR, load_weights, save_compacted, save_weights


def test_fp16_round_trip(tmp_path):
    torch.manual_seed(0)
    codec = VideoCodec("dcvc_hem", width=0.125)
    json_path, weights = save_weights(codec, tmp_path / "m", dtype="float16", description="x", training={"a": 1})
    meta = json.loads(open(json_path).read())
    assert meta["codec"] == codec.config and meta["dtype"] == "float16" and meta["training"] == {"a": 1}
    loaded = load_weights(json_path)
    assert not loaded.training
    for key, value in codec.state_dict().items():
        restored = loaded.state_dict()[key]
        assert restored.dtype == torch.float32
        assert torch.equal(restored, value.half().float()), key
    assert available_pretrained(tmp_path) == ["m"]
    with pytest.raises(KeyError, match="no pretrained model 'n'"):
        pretrained("n", folder=tmp_path)


def test_compacted_round_trip(tmp_path):
    torch.manual_seed(0)
    codec = VideoCodec("dcvc_hem", width=0.125).eval()
    json_path, _ = save_compacted(codec, tmp_path / "c")
    loaded = load_weights(json_path)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in codec.state_dict().items())


def test_missing_weights_file(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"codec": {"family": "dcvc_hem"}, "weights": "m.safetensors"}))
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        load_weights(tmp_path / "m.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not an lwdvc model description"):
        load_weights(tmp_path / "bad.json")


@pytest.mark.parametrize("name, family, intra_width", [("dcvc_hem_w025", "dcvc_hem", 0.25),
                                                       ("dcvc_hem_w025_v2", "dcvc_hem", 0.25),
                                                       ("dcvc_hem_w025_v3", "dcvc_hem_skip", 0.25),
                                                       ("dcvc_hem_w025_v4", "dcvc_hem_skip", 0.5),
                                                       ("dcvc_hem_w025_v5", "dcvc_hem_skip", 0.5)])
def test_shipped_teachers_code_the_held_out_clip(name, family, intra_width):
    from lwdvc.data import PaddedSequence, default_sequences
    from lwdvc.eval import GopSettings, code_sequence

    assert name in available_pretrained()
    codec = pretrained(name)
    assert codec.config == {"family": family, "width": 0.25, "intra_width": intra_width, "anchors": 4}
    assert (WEIGHTS_DIR / f"{name}.safetensors").stat().st_size <= 20e6  # fp16, at most 20 MB
    sequence = PaddedSequence(default_sequences("test", max_frames=2)[0])
    low = code_sequence(codec, sequence, 0, GopSettings(gop=2, frames=2))
    high = code_sequence(codec, sequence, 3, GopSettings(gop=2, frames=2))
    assert high["bpp"] > low["bpp"] and high["psnr"] > low["psnr"]
    # A trained codec: the held-out clip codes at about 22 dB (an untrained one gives 8-10 dB).
    assert low["psnr"] > 20.0


def test_the_default_teacher_is_v4():
    """v4 stays the default until the demo is rerun on a newer teacher (docs/results/demo.md
    states the numbers of the default)."""
    from lwdvc.commands.common import DEFAULT_MODEL

    assert DEFAULT_MODEL == "pretrained:dcvc_hem_w025_v4"
    assert pretrained().config == pretrained("dcvc_hem_w025_v4").config
