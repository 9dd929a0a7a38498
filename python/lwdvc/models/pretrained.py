"""Trained codecs shipped with the package (``lwdvc/weights/``) and the format they use.

A shipped model is two files in a weights folder:

* ``<name>.json``: ``{"name", "codec": VideoCodec config, "dtype", "weights": file name,
  "description", "training": {...}}`` (plain JSON, never executed);
* ``<name>.safetensors``: the state_dict (stored in ``dtype``, loaded as float32).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from lwdvc.errors import BadArgumentError, InputFileError, UnknownNameError

__all__ = ["WEIGHTS_DIR", "available_pretrained", "pretrained", "load_weights", "save_weights",
           "save_compacted"]

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def available_pretrained(folder: str | os.PathLike | None = None) -> list[str]:
    """Names of the models in ``folder`` (default: the package's weights folder)."""
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if p.with_suffix(".safetensors").is_file())


def save_weights(codec, path: str | os.PathLike, dtype: str = "float16",
                 description: str = "", training: dict[str, Any] | None = None) -> tuple[str, str]:
    """Write ``codec`` (a :class:`~lwdvc.models.video_codec.VideoCodec`) as ``<path>.json`` + ``.safetensors``.

    Args:
        codec: the model.
        path: file path without extension; its base name is the model name.
        dtype: storage dtype ("float16", "bfloat16" or "float32").
        description, training: free text and a JSON-able record of how it was trained.

    Returns:
        (json path, safetensors path).
    """
    from safetensors.torch import save_file

    if dtype not in _DTYPES:
        raise BadArgumentError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(_DTYPES[dtype]).contiguous().clone() for k, v in codec.state_dict().items()}
    weights = base.with_suffix(".safetensors")
    save_file(tensors, str(weights), metadata={"format": "lwdvc-codec", "dtype": dtype})
    meta = {"name": base.name, "codec": codec.config, "dtype": dtype, "weights": weights.name,
            "description": description, "training": training or {}}
    json_path = base.with_suffix(".json")
    json_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return str(json_path), str(weights)


def save_compacted(codec, path: str | os.PathLike, description: str = "",
                   training: dict[str, Any] | None = None) -> tuple[str, str]:
    """Write a codec whose modules were compacted (smaller layers) as ``<path>.json`` + ``.safetensors``.

    The weights file is ``lwdvc_kernels.save``'s layout-carrying format; :func:`load_weights`
    rebuilds the model from a fresh dense template of the same codec config (float32).

    Returns:
        (json path, safetensors path).
    """
    import lwdvc_kernels

    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    weights = base.with_suffix(".safetensors")
    lwdvc_kernels.save(codec, weights)
    meta = {"name": base.name, "codec": codec.config, "dtype": "float32", "weights": weights.name,
            "compacted": True, "description": description, "training": training or {}}
    json_path = base.with_suffix(".json")
    json_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return str(json_path), str(weights)


def _weights_path(json_path: Path, meta: dict[str, Any]) -> Path:
    """The weights file a model description names: a plain file name inside its own folder."""
    name = meta["weights"]
    if not isinstance(name, str) or not name:
        raise InputFileError(f"{json_path}: \"weights\" must be a file name, got {name!r}")
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts or relative.drive:
        raise InputFileError(f"{json_path}: the weights file {name!r} must lie in the description's folder "
                             "(a relative path without '..')")
    return json_path.parent / relative


def _read_tensors(weights: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as error:
        raise InputFileError(f"{weights} is not a safetensors file ({error})") from error


def load_weights(json_path: str | os.PathLike):
    """Load a codec written by :func:`save_weights` or :func:`save_compacted` (float32, eval mode).

    Raises:
        FileNotFoundError: the JSON or the weights file is missing (named).
        InputFileError: the JSON is not an lwdvc codec description, names a weights file outside
            its folder, or the weights are not safetensors or do not fit.
        ConfigError: the codec config is bad (e.g. an absurd width or number of rate points).
    """
    from lwdvc.models.video_codec import VideoCodec
    from lwdvc.models.zoo import load_state_dict_checked

    json_path = Path(json_path)
    if not json_path.is_file():
        raise FileNotFoundError(f"model description not found: {json_path}")
    try:
        meta = json.loads(json_path.read_text())
        codec_config = meta["codec"]
        weights = _weights_path(json_path, meta)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise InputFileError(f"{json_path} is not an lwdvc model description: {error}") from error
    if not weights.is_file():
        raise FileNotFoundError(f"weights file not found: {weights}")
    codec = VideoCodec.from_config(codec_config)
    if meta.get("compacted"):
        import lwdvc_kernels

        try:
            return lwdvc_kernels.load(weights, template=codec).eval()
        except ValueError as error:
            raise InputFileError(f"{weights}: {error}") from error
    state = {k: v.float() for k, v in _read_tensors(weights).items()}
    load_state_dict_checked(codec, state)
    return codec.eval()


def pretrained(name: str = "dcvc_hem_w025_v4", folder: str | os.PathLike | None = None):
    """A trained codec shipped with the package, as a float32 VideoCodec in eval mode.

    Args:
        name: a name from :func:`available_pretrained`.
        folder: weights folder (default: the package's).
    """
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    names = available_pretrained(folder)
    if name not in names:
        raise UnknownNameError(f"no pretrained model {name!r} in {folder}; available: {', '.join(names) or 'none'}")
    return load_weights(folder / f"{name}.json")
