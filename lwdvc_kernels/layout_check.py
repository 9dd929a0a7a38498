"""Validation of the JSON channel layout that :mod:`lwdvc_kernels.serialize` stores.

:func:`parse_layout` turns the metadata text into a layout whose every field has the type the
loader relies on, or raises a ValueError naming the field (never KeyError, TypeError or
RecursionError: the text comes from a file)."""
from __future__ import annotations

import json
from typing import Any

import torch

__all__ = ["MAX_MODULE_DEPTH", "parse_layout", "check_tensor"]

#: Deepest module nesting a layout may describe (dots in a qualified name; codecs need < 10).
MAX_MODULE_DEPTH = 64
_SCALARS = (bool, int, float, str, type(None))
_KINDS = ("parameter", "buffer")


def _require(condition: bool, where: str, what: str, value: Any) -> None:
    if not condition:
        shown = repr(value)
        raise ValueError(f"{where}: {what}, got {shown[:80] + '...' if len(shown) > 80 else shown}")


def _dtype(name: Any, where: str) -> torch.dtype:
    dtype = getattr(torch, name, None) if isinstance(name, str) else None
    _require(isinstance(dtype, torch.dtype), where, "dtype must name a torch dtype", name)
    return dtype


def _check_module(qualname: Any, entry: Any, where: str) -> None:
    _require(isinstance(qualname, str), where, "module names must be strings", qualname)
    _require(qualname.count(".") < MAX_MODULE_DEPTH, where, f"modules nest at most {MAX_MODULE_DEPTH} deep",
             qualname)
    here = f"{where} module {qualname or '<root>'!r}"
    _require(isinstance(entry, dict), here, "must be an object", entry)
    for key, kind in (("type", str), ("attrs", dict), ("tensors", dict)):
        _require(isinstance(entry.get(key), kind), here, f"{key!r} must be a {kind.__name__}", entry.get(key))
    for name, value in entry["attrs"].items():
        ok = isinstance(value, _SCALARS) or (isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value))
        _require(ok, f"{here} attribute {name!r}", "must be a number, string, null or list of them", value)
    for name, spec in entry["tensors"].items():
        at = f"{here} tensor {name!r}"
        _require(isinstance(spec, dict), at, "must be an object", spec)
        shape = spec.get("shape")
        _require(isinstance(shape, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                 for v in shape), at, "shape must be a list of sizes >= 0", shape)
        dtype = _dtype(spec.get("dtype"), at)
        _require(spec.get("kind") in _KINDS, at, f"kind must be one of {_KINDS}", spec.get("kind"))
        _require(spec["kind"] == "buffer" or dtype.is_floating_point or dtype.is_complex, at,
                 "a parameter must have a floating dtype", spec.get("dtype"))
        fmt = spec.get("memory_format")
        _require(fmt is None or (fmt == "channels_last" and len(shape) == 4), at,
                 "memory_format must be 'channels_last' on a 4-D tensor, or absent", fmt)


def parse_layout(text: Any, where: str, fmt: str, version: int) -> dict[str, Any]:
    """The layout stored as ``text``, checked field by field.

    Raises:
        ValueError: not JSON (or nested too deep for the parser), another format or version, or
            a field of the wrong type (the message names it). The fields' types bound the nesting
            the loader walks: objects of modules, of tensors, of scalar attributes or lists of them.
    """
    _require(isinstance(text, str), where, "the layout metadata must be text", text)
    try:
        layout = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{where} has no valid lwdvc layout metadata ({error})") from None
    _require(isinstance(layout, dict), where, "the layout must be a JSON object", layout)
    if layout.get("format") != fmt or layout.get("version") != version:
        raise ValueError(f"{where} has format {layout.get('format')!r} v{layout.get('version')}, "
                         f"expected {fmt!r} v{version}")
    _require(isinstance(layout.get("root"), str), where, "'root' must be a type name", layout.get("root"))
    modules = layout.get("modules")
    _require(isinstance(modules, dict), where, "'modules' must be an object of modules", modules)
    _require("" in modules, where, "'modules' must describe the root module (name '')", sorted(modules)[:5])
    for qualname, entry in modules.items():
        _check_module(qualname, entry, where)
    return layout


def check_tensor(key: str, value: torch.Tensor, spec: dict[str, Any]) -> None:
    """The stored tensor ``value`` must have the shape and dtype the layout gives it."""
    if list(value.shape) != spec["shape"]:
        raise ValueError(f"load: tensor {key!r} has shape {list(value.shape)}, layout says {spec['shape']}")
    if str(value.dtype).removeprefix("torch.") != spec["dtype"]:
        raise ValueError(f"load: tensor {key!r} has dtype {value.dtype}, layout says {spec['dtype']}")
