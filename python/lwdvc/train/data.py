"""The training dataset of a configuration: crops of frame groups from videos."""
from __future__ import annotations

from lwdvc.data import CropGroupDataset, default_sequences, open_sequence
from lwdvc.train.config import TrainConfig

__all__ = ["training_dataset"]


def training_dataset(config: TrainConfig) -> CropGroupDataset:
    """Random crops of ``config.frames`` consecutive frames from ``config.data`` (or the defaults).

    Raises:
        FileNotFoundError / ValueError: a video is missing or unreadable, or no video is large
            or long enough for the crop (named in the message).
    """
    if config.data:
        sequences = [open_sequence(path, max_frames=config.max_frames, max_side=config.max_side)
                     for path in config.data]
    else:
        sequences = default_sequences("train", max_frames=config.max_frames, max_side=config.max_side)
    return CropGroupDataset(sequences, frames_per_item=config.frames, crop=config.crop)
