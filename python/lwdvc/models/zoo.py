"""Model registry and the loader for official checkpoints.

Every codec registers a constructor under a name with ``@register(name)``; ``build(name, **config)``
instantiates it and ``load_official(name, path)`` builds it and loads an official checkpoint file
into it, with every key mismatch reported by name.
"""
from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from lwdvc.errors import InputFileError, UnknownNameError

__all__ = ["register", "build", "available", "load_official", "unwrap_checkpoint",
           "load_state_dict_checked", "StateDictMismatchError"]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_CONTAINER_KEYS = ("state_dict", "net", "model")
_MAX_LISTED = 20


class StateDictMismatchError(InputFileError, KeyError):
    """A checkpoint does not fit a model; the message names every offending key."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Class/function decorator that makes a model constructor available to ``build(name)``.

    Args:
        name: registry name, e.g. "dcvc". Must not be registered yet.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")

    def decorator(constructor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not constructor:
            raise ValueError(f"model name {name!r} is already registered to {existing!r}")
        _REGISTRY[name] = constructor
        return constructor

    return decorator


def available() -> list[str]:
    """Sorted names of all registered models."""
    return sorted(_REGISTRY)


def build(name: str, **config: Any) -> nn.Module:
    """Instantiate a registered model.

    Args:
        name: a name from ``available()``.
        **config: keyword arguments of the model constructor (e.g. ``width=0.25``).
    """
    if name not in _REGISTRY:
        raise UnknownNameError(f"unknown model {name!r}; available: {', '.join(available()) or 'none'}")
    return _REGISTRY[name](**config)


def unwrap_checkpoint(checkpoint: Any) -> dict[str, torch.Tensor]:
    """Return the flat state_dict inside an official checkpoint object.

    Unwraps nested ``state_dict`` / ``net`` / ``model`` containers and strips every leading
    ``module.`` (DataParallel) prefix.
    """
    seen = 0
    while isinstance(checkpoint, Mapping) and seen < 4:
        inner = next((checkpoint[k] for k in _CONTAINER_KEYS
                      if k in checkpoint and isinstance(checkpoint[k], Mapping)), None)
        if inner is None:
            break
        checkpoint, seen = inner, seen + 1
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"checkpoint must be a mapping of tensors, got {type(checkpoint).__name__}")
    state: dict[str, torch.Tensor] = {}
    for key, value in checkpoint.items():
        if not isinstance(key, str):
            raise TypeError(f"checkpoint key {key!r} is not a string")
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"checkpoint entry {key!r} is a {type(value).__name__}, not a tensor")
        while key.startswith("module."):
            key = key[len("module."):]
        state[key] = value
    return state


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f", ... ({len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else "")


def load_state_dict_checked(model: nn.Module, state: Mapping[str, torch.Tensor],
                            ignore: Callable[[str], bool] | None = None) -> nn.Module:
    """Load ``state`` into ``model`` after checking keys and shapes exactly.

    Args:
        model: target module.
        state: flat state_dict (already unwrapped).
        ignore: predicate for checkpoint keys that are derived data the model rebuilds itself
            (for example entropy-coder tables); such keys may be present or absent.

    Raises:
        StateDictMismatchError: listing missing, unexpected and mis-shaped keys by name.
    """
    ignore = ignore or (lambda key: False)
    state = {k: v for k, v in state.items() if not ignore(k)}
    expected = {k: v for k, v in model.state_dict().items() if not ignore(k)}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
                 for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or misshaped:
        parts = [f"checkpoint does not fit {type(model).__name__}:"]
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_listed(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_listed(unexpected)}")
        if misshaped:
            parts.append(f"mis-shaped keys ({len(misshaped)}): {_listed(misshaped)}")
        raise StateDictMismatchError("\n  ".join(parts))
    model.load_state_dict(state, strict=False)
    return model


def load_official(name: str, path: str | os.PathLike, **config: Any) -> nn.Module:
    """Build model ``name`` and load an official checkpoint file into it.

    The file is read with ``torch.load(..., weights_only=True)`` on the CPU. A model may define
    ``ignored_official_key(key) -> bool`` for checkpoint keys it derives itself.

    Args:
        name: a name from ``available()``.
        path: checkpoint file (.pth / .pth.tar / .pt).
        **config: constructor arguments (normally none for the official configuration).

    Returns:
        The model in eval mode with the checkpoint's weights.

    Raises:
        InputFileError: the file holds pickled objects other than tensors and plain containers.
        StateDictMismatchError: the weights do not fit the model (every offending key named).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {os.fspath(path)!r}")
    model = build(name, **config)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's text would suggest weights_only=False: never done here
        raise InputFileError(f"checkpoint {os.fspath(path)!r} holds pickled code or objects beyond tensors "
                             "(unsupported globals); it is refused, only tensors are loaded") from None
    state = unwrap_checkpoint(checkpoint)
    load_state_dict_checked(model, state, getattr(model, "ignored_official_key", None))
    return model.eval()
