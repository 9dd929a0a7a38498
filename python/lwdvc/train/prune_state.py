"""Save a pruned (masked) student and compact it again later, e.g. with another ``round_to``."""
from __future__ import annotations

import json
import os

from lwdvc.checkpoint import save_atomic

__all__ = ["PRUNE_FORMAT", "save_prune_state", "compact_prune_state"]

PRUNE_FORMAT = "lwdvc-prune-state"


def save_prune_state(path: str | os.PathLike, student, pruner, config) -> str:
    """Write the masked student's weights, its masks and the settings (loads with weights_only).

    Args:
        path: output ``.pt`` file (written atomically).
        student: the masked VideoCodec (``prune_codec(...)["student"]``).
        pruner: its Pruner.
        config: the PruneConfig used.
    """
    return save_atomic({"format": PRUNE_FORMAT, "version": 1, "codec": json.dumps(student.config, sort_keys=True),
                        "prune_config": config.to_json(), "model": student.state_dict(),
                        "pruner": pruner.state_dict()}, path)


def compact_prune_state(path: str | os.PathLike, round_to: int | None = None, verify: bool = True):
    """Rebuild the masked student of a prune state and compact it.

    Returns:
        (compacted VideoCodec, finalize report).

    Raises:
        CheckpointError: the file is missing or not a prune state.
    """
    import torch

    from lwdvc.checkpoint import CheckpointError
    from lwdvc.models.video_codec import VideoCodec
    from lwdvc.prune import Pruner, finalize
    from lwdvc.train.finetune import PruneConfig

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"prune state not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"cannot read prune state {path}: {type(error).__name__}") from error
    if not isinstance(payload, dict) or payload.get("format") != PRUNE_FORMAT:
        raise CheckpointError(f"{path} is not an lwdvc prune state (written by `lwdvc prune`)")
    config = PruneConfig(**json.loads(payload["prune_config"]))
    student = VideoCodec.from_config(json.loads(payload["codec"]))
    pruner = Pruner.for_codec(student.inter, frame_size=config.analysis_size, target_mac_reduction=config.target,
                              mode=config.mode, selection=config.selection, total_steps=config.steps,
                              round_to=config.round_to, keep_dense=list(config.keep_dense))
    student.load_state_dict(payload["model"])
    pruner.load_state_dict(payload["pruner"])
    small, report = finalize(pruner, round_to=round_to, verify=verify, return_report=True)
    student.inter = small
    return student.eval(), report
