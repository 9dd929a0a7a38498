"""The project's error family: every user error is a UserError and still the builtin it replaced."""
from __future__ import annotations

import pytest

from lwdvc.checkpoint import CheckpointError, load_checkpoint
from lwdvc.data import YUV420Sequence
from lwdvc.errors import BadArgumentError, ConfigError, InputFileError, UnknownNameError, UserError
from lwdvc.models import VideoCodec, build, pretrained
from lwdvc.models.zoo import StateDictMismatchError
from lwdvc.prune import PruneConfigError
from lwdvc.train import TrainConfig, TrainingDiverged
from lwdvc.train.finetune import PruneConfig


@pytest.mark.parametrize("error, builtin", [
    (BadArgumentError, ValueError), (ConfigError, ValueError), (InputFileError, ValueError),
    (UnknownNameError, KeyError), (CheckpointError, ValueError), (PruneConfigError, ValueError),
    (StateDictMismatchError, KeyError), (StateDictMismatchError, ValueError),
    (TrainingDiverged, RuntimeError),
])
def test_user_errors_keep_their_builtin(error, builtin):
    assert issubclass(error, UserError) and issubclass(error, builtin)
    with pytest.raises(builtin, match="what went wrong"):
        raise error("what went wrong")


def test_unknown_name_error_message_is_not_quoted():
    assert str(UnknownNameError("no model 'x'")) == "no model 'x'"
    assert str(StateDictMismatchError("missing keys")) == "missing keys"


def test_unknown_names_raise_unknown_name_error():
    with pytest.raises(UnknownNameError, match="unknown model 'no_such_model'"):
        build("no_such_model")
    with pytest.raises(UnknownNameError, match="no pretrained model 'no_such_model'"):
        pretrained("no_such_model")


def test_bad_configurations_raise_config_error():
    with pytest.raises(ConfigError, match="crop must be a multiple of 16"):
        TrainConfig(crop=100)
    with pytest.raises(ConfigError, match="target must be in"):
        PruneConfig(target=1.5)
    with pytest.raises(ConfigError, match="unknown codec family 'h264'"):
        VideoCodec.from_config({"family": "h264"})


def test_bad_files_raise_input_file_error(tmp_path):
    yuv = tmp_path / "clip_16x16.yuv"
    yuv.write_bytes(b"\0" * 100)  # a 16x16 4:2:0 frame is 384 bytes
    with pytest.raises(InputFileError, match="not a whole number of 16x16"):
        YUV420Sequence(yuv)
    junk = tmp_path / "checkpoint.pt"
    junk.write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(junk)
