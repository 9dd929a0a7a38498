"""Starting a frame-skip DCVC-HEM from DCVC-HEM weights (checkpoints and shipped models)."""
from __future__ import annotations

import pytest
import torch

from lwdvc.checkpoint import CheckpointError
from lwdvc.models import VideoCodec, pretrained
from lwdvc.models.video_codec import weights_fit
from lwdvc.train import train
from lwdvc.train.loop import load_init_weights

from .conftest import tiny_config

RECON_CONV = ("inter.recon_generation_net.recon_conv.weight", "inter.recon_generation_net.recon_conv.bias")


def _assert_copy_start(codec, source_state):
    for name, value in codec.state_dict().items():
        if name in RECON_CONV:
            assert value.abs().sum() == 0 and source_state[name].abs().sum() > 0, name
        else:
            assert torch.equal(value, source_state[name]), name


def test_weights_fit_rules():
    plain = {"family": "dcvc_hem", "width": 0.25, "intra_width": 0.25, "anchors": 4}
    skip = dict(plain, family="dcvc_hem_skip")
    assert weights_fit(plain, plain) == "same" and weights_fit(skip, skip) == "same"
    assert weights_fit(plain, skip) == "to_frame_skip"
    assert weights_fit(skip, plain) is None
    assert weights_fit(plain, dict(skip, width=0.5)) is None
    assert weights_fit(dict(plain, family="dcvc"), skip) is None


def test_a_dcvc_hem_checkpoint_starts_a_frame_skip_codec_as_a_copy(tmp_path):
    source = train(tiny_config(stage="intra", steps=1), tmp_path / "a", progress=False)["codec"]
    skip_config = tiny_config(family="dcvc_hem_skip").codec_config()
    codec = VideoCodec.from_config(skip_config)
    load_init_weights(codec, str(tmp_path / "a" / "checkpoint.pt"))
    _assert_copy_start(codec, source.state_dict())
    # and not the other way: a frame-skip checkpoint does not go into the plain family
    skipped = train(tiny_config(family="dcvc_hem_skip", stage="intra", steps=1), tmp_path / "b",
                    progress=False)["codec"]
    assert skipped.inter.frame_skip
    plain = VideoCodec.from_config(tiny_config().codec_config())
    with pytest.raises(CheckpointError, match="'dcvc_hem_skip'"):
        load_init_weights(plain, str(tmp_path / "b" / "checkpoint.pt"))


def test_a_shipped_dcvc_hem_starts_a_frame_skip_codec():
    codec = VideoCodec("dcvc_hem_skip", width=0.25)
    load_init_weights(codec, "pretrained:dcvc_hem_w025_v2")
    _assert_copy_start(codec, pretrained("dcvc_hem_w025_v2").state_dict())



def test_parts_load_from_codecs_whose_other_part_has_another_width(tmp_path):
    """intra=A,inter=B joins parts whose sources differ in the width of the part not taken
    (here an I-frame codec of width 0.125 and the shipped P-frame codec of width 0.25)."""
    trained = train(tiny_config(family="dcvc_hem_skip", stage="intra", steps=1), tmp_path / "a",
                    progress=False)["codec"]
    shipped = pretrained("dcvc_hem_w025_v3")
    target = VideoCodec("dcvc_hem_skip", width=0.25, intra_width=0.125)
    assert trained.config["width"] != target.config["width"]
    assert shipped.config["intra_width"] != target.config["intra_width"]
    load_init_weights(target, f"intra={tmp_path / 'a' / 'checkpoint.pt'},inter=pretrained:dcvc_hem_w025_v3")
    for name, value in target.state_dict().items():
        expected = (trained if name.startswith("intra.") else shipped).state_dict()[name]
        assert torch.equal(value, expected), name
    # the part taken must still fit: a P-frame codec of another width is refused
    wider = VideoCodec("dcvc_hem_skip", width=0.5, intra_width=0.125)
    with pytest.raises(CheckpointError, match="width 0.25"):
        load_init_weights(wider, "inter=pretrained:dcvc_hem_w025_v3")
