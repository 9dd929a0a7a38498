"""Save and load compacted models without pickled code.

File format: one safetensors file. Its tensors are every parameter and buffer of the model
(keyed by qualified name); its metadata entry ``"lwdvc.layout"`` is JSON::

    {"format": "lwdvc-compact", "version": 1, "root": "<type>",
     "modules": {"<qualname>": {"type": "<module.qualname of the class>",
                                "attrs": {"in_channels": 12, "group_sizes": [3, 4], ...},
                                "tensors": {"weight": {"shape": [...], "dtype": "float32",
                                                       "kind": "parameter",
                                                       "memory_format": "channels_last"}}}}}

``memory_format`` is present only for 4-D tensors stored channels-last in the model (as
:func:`lwdvc_kernels.compact` leaves them); :func:`load` restores that layout.

``attrs`` are the constructor-relevant attributes (channel counts, kernel geometry, groups...).
:func:`load` rebuilds the compacted model from a *template* (the dense architecture, e.g. a
freshly built model): every module is checked against the layout, tensors are replaced by
tensors of the stored shapes, the attributes are set, then the values are loaded. Models made
only of standard layers inside ``nn.Sequential`` can be rebuilt without a template. Writes are
atomic (temporary file + ``os.replace``); reading never unpickles anything.
"""
from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lwdvc_kernels.layout_check import check_tensor, parse_layout

__all__ = ["save", "load", "layout_of", "FORMAT", "VERSION"]

FORMAT = "lwdvc-compact"
VERSION = 1
_LAYOUT_KEY = "lwdvc.layout"
_ATTRS = (
    "in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "output_padding",
    "groups", "padding_mode", "transposed", "in_features", "out_features", "num_features",
    "num_channels", "num_groups", "eps", "momentum", "affine", "track_running_stats",
    "upscale_factor", "downscale_factor", "inverse", "mask_type", "deformable_groups",
    "group_sizes", "uniform_groups", "offset_in_channels", "num_parameters", "negative_slope",
    "inplace", "scale_factor", "mode", "align_corners", "beta_min", "reparam_offset", "pedestal",
    "beta_bound", "gamma_bound", "gamma_init",
)


def _type_name(module: nn.Module) -> str:
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)) and all(isinstance(v, (bool, int, float, str)) for v in value):
        return list(value)
    return _SKIP


_SKIP = object()


def layout_of(model: nn.Module) -> dict[str, Any]:
    """The JSON-able channel layout of ``model`` (see the module docstring)."""
    modules = {}
    for qualname, module in model.named_modules():
        attrs = {}
        for name in _ATTRS:
            if name in vars(module) or isinstance(getattr(type(module), name, None), property):
                value = _jsonable(getattr(module, name, None))
                if value is not _SKIP:
                    attrs[name] = value
        tensors = {}
        for kind, items in (("parameter", module._parameters), ("buffer", module._buffers)):
            for name, t in items.items():
                if t is not None:
                    spec = {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch."), "kind": kind}
                    if t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
                        spec["memory_format"] = "channels_last"
                    tensors[name] = spec
        modules[qualname] = {"type": _type_name(module), "attrs": attrs, "tensors": tensors}
    return {"format": FORMAT, "version": VERSION, "root": _type_name(model), "modules": modules}


def save(model: nn.Module, path: str | os.PathLike) -> None:
    """Write ``model`` (compacted, without mask parametrizations) to ``path`` atomically."""
    from safetensors.torch import save_file

    from lwdvc_kernels.masking import has_masks

    if has_masks(model):  # a layer's own parametrizations (weight norm...) are stored as they are
        raise ValueError("save: the model still has mask parametrizations; compact it (or detach_masks) first")
    layout = layout_of(model)
    tensors = {}
    for qualname, module in model.named_modules():
        for items in (module._parameters, module._buffers):
            for name, t in items.items():
                if t is not None:
                    key = f"{qualname}.{name}" if qualname else name
                    tensors[key] = t.detach().to("cpu").contiguous().clone()
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={_LAYOUT_KEY: json.dumps(layout)})
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise FileNotFoundError(f"load: no such file {str(path)!r}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            # fresh copies: the allocator's alignment (a file's tensors sit at arbitrary offsets,
            # and CPU GEMMs may round differently on unaligned weights) and no tie to the file
            tensors = {k: f.get_tensor(k).clone() for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"load: {str(path)!r} is not a valid safetensors file ({err})") from err
    if _LAYOUT_KEY not in metadata:
        raise ValueError(f"load: {str(path)!r} has no lwdvc layout metadata ({_LAYOUT_KEY!r})")
    layout = parse_layout(metadata[_LAYOUT_KEY], f"load: {str(path)!r}", FORMAT, VERSION)
    return layout, tensors


def _apply(model: nn.Module, layout: dict[str, Any], tensors: dict[str, torch.Tensor], path: Path) -> nn.Module:
    modules = dict(model.named_modules())
    missing = sorted(set(layout["modules"]) - set(modules))
    extra = sorted(q for q in set(modules) - set(layout["modules"])
                   if list(modules[q]._parameters) or list(modules[q]._buffers))
    if missing or extra:
        raise ValueError(f"load: {str(path)!r} does not match the template: missing modules {missing[:5]}, "
                         f"extra {extra[:5]}")
    for qualname, entry in layout["modules"].items():
        module = modules[qualname]
        where = qualname or "<root>"
        if _type_name(module) != entry["type"]:
            raise ValueError(f"load: module {where} is {_type_name(module)} in the template but {entry['type']} "
                             "in the file")
        own = {k for k, v in {**module._parameters, **module._buffers}.items() if v is not None}
        if own != set(entry["tensors"]):
            raise ValueError(f"load: module {where} has tensors {sorted(own)} but the file {sorted(entry['tensors'])}")
        for name, spec in entry["tensors"].items():
            key = f"{qualname}.{name}" if qualname else name
            if key not in tensors:
                raise ValueError(f"load: tensor {key!r} is missing from {str(path)!r}")
            value = tensors[key]
            check_tensor(key, value, spec)
            old = getattr(module, name)
            value = value.to(device=old.device)
            if spec.get("memory_format") == "channels_last":
                value = value.contiguous(memory_format=torch.channels_last)
            if spec["kind"] == "parameter":
                module._parameters[name] = nn.Parameter(value, requires_grad=old.requires_grad)
            else:
                module._buffers[name] = value
        for name, value in entry["attrs"].items():
            if isinstance(getattr(type(module), name, None), property):
                continue
            current = getattr(module, name, None)
            setattr(module, name, tuple(value) if isinstance(current, tuple) else value)
    return model


_BUILDERS = {
    "torch.nn.modules.conv.Conv2d": lambda a, t: nn.Conv2d(
        a["in_channels"], a["out_channels"], a["kernel_size"], a["stride"], a["padding"], a["dilation"],
        a["groups"], "bias" in t, a["padding_mode"]),
    "torch.nn.modules.conv.ConvTranspose2d": lambda a, t: nn.ConvTranspose2d(
        a["in_channels"], a["out_channels"], a["kernel_size"], a["stride"], a["padding"], a["output_padding"],
        a["groups"], "bias" in t, a["dilation"]),
    "torch.nn.modules.linear.Linear": lambda a, t: nn.Linear(a["in_features"], a["out_features"], "bias" in t),
    "torch.nn.modules.batchnorm.BatchNorm2d": lambda a, t: nn.BatchNorm2d(
        a["num_features"], a["eps"], a["momentum"], a["affine"], a["track_running_stats"]),
    "torch.nn.modules.pixelshuffle.PixelShuffle": lambda a, t: nn.PixelShuffle(a["upscale_factor"]),
    "torch.nn.modules.activation.ReLU": lambda a, t: nn.ReLU(),
    "torch.nn.modules.activation.LeakyReLU": lambda a, t: nn.LeakyReLU(a["negative_slope"]),
    "torch.nn.modules.activation.Sigmoid": lambda a, t: nn.Sigmoid(),
    "torch.nn.modules.activation.Tanh": lambda a, t: nn.Tanh(),
}


def _build_sequential(layout: dict[str, Any], prefix: str = "") -> nn.Module:
    entry = layout["modules"][prefix]
    if entry["type"] != "torch.nn.modules.container.Sequential":
        builder = _BUILDERS.get(entry["type"])
        if builder is None:
            raise ValueError(
                f"load: cannot rebuild {entry['type']} without a template; pass template= (the dense model)"
            )
        try:
            return builder(entry["attrs"], entry["tensors"])
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"load: module {prefix or '<root>'!r} ({entry['type']}) has bad or missing "
                             f"attributes: {type(error).__name__}: {error}") from None
    head = f"{prefix}." if prefix else ""  # "1." so that "10" is not taken for a child of "1"
    children = [q for q in layout["modules"] if q != prefix and q.startswith(head) and "." not in q[len(head):]]
    bad = [q for q in children if not (q[len(head):].isascii() and q[len(head):].isdigit())]
    if bad:
        raise ValueError(f"load: Sequential {prefix or '<root>'!r} has children that are not numbered: {bad[:5]}")
    children.sort(key=lambda q: int(q[len(head):]))
    return nn.Sequential(*[_build_sequential(layout, q) for q in children])


def load(path: str | os.PathLike, template: nn.Module | None = None) -> nn.Module:
    """Rebuild a model written by :func:`save`.

    Args:
        path: the file.
        template: the dense architecture (not modified; a copy is resized and filled). May be
            omitted for ``nn.Sequential`` models of standard layers.

    Raises:
        FileNotFoundError, ValueError: missing, corrupt or mismatching file (the message names
            the module or tensor).
    """
    path = Path(path)
    layout, tensors = _read(path)
    if template is None:
        if layout["root"] != "torch.nn.modules.container.Sequential":
            raise ValueError(f"load: {layout['root']} needs a template model (its forward code is not stored)")
        model = _build_sequential(layout)
    else:
        model = copy.deepcopy(template)
    return _apply(model, layout, tensors, path)
