"""The training dataset of a run: random crops of frame groups from videos."""
from __future__ import annotations

from collections.abc import Sequence

from lwdvc.data import CropGroupDataset, default_sequences, open_sequence

__all__ = ["training_dataset"]


def training_dataset(config) -> CropGroupDataset:
    """Random crops of ``config.frames`` consecutive frames from ``config.data`` (or the defaults).

    Args:
        config: anything with ``data`` (list of paths; empty = the embedded default training
            clips), ``frames``, ``crop``, ``max_side`` and ``max_frames`` (TrainConfig,
            PruneConfig).

    Raises:
        FileNotFoundError / ValueError: a video is missing or unreadable, or no video is large
            or long enough for the crop (named in the message).
    """
    paths: Sequence[str] = config.data
    if paths:
        sequences = [open_sequence(path, max_frames=config.max_frames, max_side=config.max_side)
                     for path in paths]
    else:
        sequences = default_sequences("train", max_frames=config.max_frames, max_side=config.max_side)
    return CropGroupDataset(sequences, frames_per_item=config.frames, crop=config.crop)
