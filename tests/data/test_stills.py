"""Embedded stills moved by a camera path: rendering, determinism, errors, training use."""
from __future__ import annotations

import pytest
import torch

from lwdvc.data import stills
from lwdvc.data.stills import MovingStillSequence, camera_path, still_data_dir, still_sequences
from lwdvc.errors import BadArgumentError


def _image(seed: int = 0, size: tuple[int, int] = (20, 20)) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, *size), generator=generator, dtype=torch.uint8)


def test_render_is_an_exact_crop_for_whole_pixel_shifts():
    """Window 0.8 of a 20x20 image at zoom 1: 16x16 frames whose pixel centres fall on source
    pixel centres, so a shift of one pixel is a crop moved by one pixel."""
    image = _image()
    path = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [1.0, -1.0, 1.0]], dtype=torch.float64)
    frames = MovingStillSequence._render(image, path, window=0.8, size=(16, 16))
    assert frames.shape == (3, 3, 16, 16) and frames.dtype == torch.uint8
    assert torch.equal(frames[0], image[:, 2:18, 2:18])
    assert torch.equal(frames[1], image[:, 2:18, 3:19])
    assert torch.equal(frames[2], image[:, 1:17, 3:19])


def test_the_path_is_scaled_to_stay_inside_the_image():
    image = _image(1, (40, 60))
    far = torch.tensor([[0.0, 0.0, 1.0], [300.0, 200.0, 1.0]], dtype=torch.float64)
    frames = MovingStillSequence._render(image, far, window=0.5, size=(20, 30))
    # the farthest window ends at the image corner (no border replication inside the frame)
    assert torch.equal(frames[1], image[:, 20:40, 30:60])


def test_camera_path_is_smooth_and_seeded():
    a = camera_path(16, torch.Generator().manual_seed(5))
    b = camera_path(16, torch.Generator().manual_seed(5))
    c = camera_path(16, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    steps = (a[1:, :2] - a[:-1, :2]).norm(dim=1)
    assert float(steps.max()) <= 2.0 + 1e-9
    assert torch.equal(a[0], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))


def test_sequence_frames_move_and_match_the_interface():
    seq = MovingStillSequence(_image(2, (64, 96)), frames=5, seed=3, max_side=40, name="x")
    assert len(seq) == 5 and seq.name == "x"
    h, w = seq.size
    assert max(h, w) <= 40 and h % 2 == 0 and w % 2 == 0
    frame = seq[4]
    assert frame.dtype == torch.float32 and frame.shape == (3, h, w) and 0 <= frame.min() <= frame.max() <= 1
    gray = MovingStillSequence(_image(2, (64, 96))[:1], frames=2)
    assert torch.equal(gray[0][0], gray[0][1])


@pytest.mark.parametrize("kwargs, message", [
    ({"image": torch.zeros(3, 8, 8)}, "uint8"),
    ({"image": torch.zeros(4, 8, 8, dtype=torch.uint8)}, r"\[3, H, W\]"),
    ({"frames": 0}, "frames must be >= 1"),
    ({"window": 1.0}, r"window must be in \(0, 1\)"),
])
def test_bad_arguments_are_named(kwargs, message):
    arguments = {"image": _image(), "frames": 2, **kwargs}
    with pytest.raises(BadArgumentError, match=message):
        MovingStillSequence(**arguments)


def test_missing_package_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(stills, "package_dirs", lambda package: [str(tmp_path / package)])
    with pytest.raises(FileNotFoundError, match="pip install scikit-image"):
        still_data_dir()


def test_the_embedded_stills_load_and_differ():
    sequences = still_sequences(frames=3, max_side=96, names=stills.STILLS[:3])
    assert [s.name for s in sequences] == ["astronaut", "chelsea", "coffee"]
    means = [float(s[0].mean()) for s in sequences]
    assert len(set(means)) == 3
    for seq in sequences:
        assert max(seq.size) == 96 and float((seq[2] - seq[0]).abs().mean()) > 0


def test_training_takes_the_embedded_sources_by_name():
    from lwdvc.train import TrainConfig
    from lwdvc.train.data import training_dataset

    def config(data, frames=2):
        return TrainConfig(data=data, max_side=128, max_frames=3, frames=frames, crop=48)

    dataset = training_dataset(config(["embedded:stills"], frames=2))
    assert [s.name for s in dataset.sequences] == [name.rsplit(".", 1)[0] for name in stills.STILLS]
    group = dataset[0]
    assert group.shape == (2, 3, 48, 48)
    both = training_dataset(config(["embedded:clips", "embedded:stills"]))
    assert len(both.sequences) == 2 + len(stills.STILLS)
