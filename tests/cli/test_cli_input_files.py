"""Malformed model descriptions, weights files and prune states give one clear line, never a traceback."""
from __future__ import annotations

import json

import pytest
import torch

from lwdvc.errors import ConfigError, InputFileError
from lwdvc.models.pretrained import load_weights, save_weights
from lwdvc.models.video_codec import VideoCodec

from .test_cli_errors import _fails


@pytest.fixture(scope="module")
def prune_state(tmp_path_factory):
    """A prune state of a width-0.125 DCVC-HEM (masks as the pruner starts them, no training)."""
    from lwdvc.prune import Pruner
    from lwdvc.train.finetune import PruneConfig
    from lwdvc.train.prune_state import save_prune_state

    codec = VideoCodec("dcvc_hem", 0.125)
    config = PruneConfig(steps=2)
    pruner = Pruner.for_codec(codec.inter, frame_size=config.analysis_size, target_mac_reduction=config.target,
                              mode=config.mode, total_steps=config.steps)
    path = tmp_path_factory.mktemp("prune") / "prune_state.pt"
    save_prune_state(path, codec, pruner, config)
    return torch.load(path, weights_only=True)


def _write_state(tmp_path, payload, **changes):
    payload = {**payload, **changes}
    payload = {k: v for k, v in payload.items() if v is not None}
    path = tmp_path / "state.pt"
    torch.save(payload, path)
    return str(path)


@pytest.mark.parametrize("codec, fragments", [
    ({"family": "dcvc_hem", "width": 0.25, "intra_width": 0.125, "anchors": 4},
     ["is for codec 'dcvc_hem' (width 0.25", "weights are of 'dcvc_hem' (P-frame width about 0.125)"]),
    ({"family": "fvc", "width": 0.125}, ["is for codec 'fvc' (width 0.125", "weights are of 'dcvc_hem'"]),
])
def test_compact_a_prune_state_whose_weights_are_of_another_codec(capsys, tmp_path, prune_state, codec, fragments):
    path = _write_state(tmp_path, prune_state, codec=json.dumps(codec))
    err = _fails(capsys, ["compact", path, "--out", str(tmp_path / "small")], *fragments)
    assert err.count("\n") == 1


def test_compact_a_prune_state_without_masks(capsys, tmp_path, prune_state):
    _fails(capsys, ["compact", _write_state(tmp_path, prune_state, pruner=None), "--out", str(tmp_path / "s")],
           "has no 'pruner' (the pruner's masks)")
    _fails(capsys, ["compact", _write_state(tmp_path, prune_state, pruner={"step": 0}), "--out", str(tmp_path / "s")],
           "holds no channel masks ('masks')")


def _description(tmp_path, **changes):
    meta = {"name": "m", "codec": {"family": "dcvc_hem", "width": 0.125}, "dtype": "float32",
            "weights": "m.safetensors", **changes}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(meta))
    (tmp_path / "m.safetensors").write_bytes(b"")
    return path


@pytest.mark.parametrize("codec, fragment", [
    ({"family": "dcvc_hem", "width": "inf"}, "must be a finite number"),
    ({"family": "dcvc_hem", "width": float("inf")}, "must be a finite number"),
    ({"family": "dcvc_hem", "width": "wide"}, "must be a number"),
    ({"family": "dcvc_hem", "width": 1000}, "at most 4"),
    ({"family": "dcvc_hem", "width": 0.125, "anchors": 1e9}, "anchors must be in [1, 64]"),
    ({"family": "dcvc_hem", "width": 0.125, "anchors": 2.5}, "whole number"),
])
def test_absurd_codec_configs_are_refused_before_building(tmp_path, codec, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        load_weights(_description(tmp_path, codec=codec))


def test_width_inf_on_the_command_line(capsys, tmp_path):
    _fails(capsys, ["train", "--out", str(tmp_path / "run"), "--width", "inf", "--no-progress"], "inf")


@pytest.mark.parametrize("weights", ["/etc/passwd", "../m.safetensors", "sub/../../m.safetensors"])
def test_weights_outside_the_description_folder_are_refused(tmp_path, weights):
    with pytest.raises(InputFileError, match="must lie in the description's folder"):
        load_weights(_description(tmp_path, weights=weights))


def test_weights_that_are_a_pickle(capsys, tmp_path):
    codec = VideoCodec("dcvc_hem", 0.125)
    json_path, weights = save_weights(codec, tmp_path / "m")
    torch.save(codec.state_dict(), weights)
    with pytest.raises(InputFileError, match="is not a safetensors file"):
        load_weights(json_path)
    _fails(capsys, ["eval", json_path, "--out", str(tmp_path)], "is not a safetensors file")


@pytest.mark.parametrize("meta", [[1, 2], "text", {"codec": {"family": "dcvc_hem"}}])
def test_descriptions_of_the_wrong_shape(tmp_path, meta):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(meta))
    with pytest.raises(InputFileError, match="is not an lwdvc model description"):
        load_weights(path)


def test_train_into_an_existing_file(capsys, tmp_path):
    out = tmp_path / "taken"
    out.write_text("a file")
    _fails(capsys, ["train", "--out", str(out), "--steps", "1", "--no-progress"], "is an existing file")
    _fails(capsys, ["prune", "--out", str(out), "--steps", "1", "--no-progress"], "a file is in the way")


@pytest.mark.parametrize("layout", [[1, 2], {"format": "lwdvc-compact", "version": 1, "root": "x"}])
def test_compacted_weights_with_a_malformed_layout(capsys, tmp_path, layout):
    from safetensors.torch import save_file

    from lwdvc.models.pretrained import save_compacted

    codec = VideoCodec("dcvc_hem", 0.125)
    json_path, weights = save_compacted(codec, tmp_path / "small")
    save_file({"w": torch.ones(1)}, weights, metadata={"lwdvc.layout": json.dumps(layout)})
    with pytest.raises(InputFileError, match="layout must be a JSON object|'modules' must be an object"):
        load_weights(json_path)
    _fails(capsys, ["eval", json_path, "--out", str(tmp_path)], "small.safetensors")
