"""Find fusable patterns in a module and replace them with fused layers.

The module is traced with ``torch.fx`` (engine layers such as GDN, DeformConv2d and MaskedConv2d
stay leaves) and shapes are propagated with the example inputs. A *conv chain* starts at a
``Conv2d`` (or at a stride-s ``ConvTranspose2d`` with few output channels, rewritten as a conv
plus PixelShuffle(s) where that is faster, see :mod:`lwdvc_kernels.optimization.subpixel`) and absorbs, while each
intermediate result has exactly one user:
an activation (ReLU / LeakyReLU, module or function) and a PixelShuffle in either order, then a
same-shape, same-dtype ``+`` of another tensor (the residual). The chain becomes one
:class:`FusedConv2d` call placed where the chain ended. GDN/IGDN modules become
:class:`FusedGDN`. A module that fx cannot trace is handled child by child.
"""
from __future__ import annotations

import copy
import operator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from lwdvc_kernels.nn import GDN, DeformConv2d, MaskedConv2d
from lwdvc_kernels.optimization.fused import FusedConv2d, FusedGDN, conv_is_fusable
from lwdvc_kernels.optimization.subpixel import subpixel_conv, subpixel_slower_reason, subpixel_unsupported_reason

__all__ = ["FusionReport", "fuse_module"]

_ACT_FUNCTIONS = {F.relu: "relu", torch.relu: "relu", F.leaky_relu: "leaky_relu"}
_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}


@dataclass
class FusionReport:
    """What :func:`fuse_module` did: one line per fused pattern, and why others were left alone."""

    fused: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def extend(self, other: FusionReport, prefix: str) -> None:
        self.fused += [f"{prefix}{line}" for line in other.fused]
        self.skipped += [f"{prefix}{line}" for line in other.skipped]


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, (GDN, DeformConv2d, MaskedConv2d)):
            return True
        return super().is_leaf_module(m, qualname)


def _activation(node: fx.Node, modules: dict[str, nn.Module]) -> tuple[str, float] | None:
    if node.op == "call_module":
        m = modules.get(node.target)  # fused layers added during the rewrite are not listed
        if type(m) is nn.ReLU:
            return "relu", 0.0
        if type(m) is nn.LeakyReLU:
            return "leaky_relu", float(m.negative_slope)
    if node.op == "call_function" and node.target in _ACT_FUNCTIONS:
        name = _ACT_FUNCTIONS[node.target]
        slope = node.kwargs.get("negative_slope", node.args[1] if len(node.args) > 1 else 0.01)
        return (name, float(slope)) if isinstance(slope, (int, float)) else None
    if node.op == "call_method" and node.target in ("relu", "relu_"):
        return "relu", 0.0
    return None


def _upscale(node: fx.Node, modules: dict[str, nn.Module]) -> int | None:
    if node.op == "call_module" and type(modules.get(node.target)) is nn.PixelShuffle:
        return int(modules[node.target].upscale_factor)
    if node.op == "call_function" and node.target is F.pixel_shuffle:
        factor = node.args[1] if len(node.args) > 1 else node.kwargs.get("upscale_factor")
        return int(factor) if isinstance(factor, int) else None
    return None


def _residual(node: fx.Node, value: fx.Node) -> fx.Node | None:
    """The other operand when ``node`` is ``value + other`` (same shape and dtype), else None."""
    is_add = (node.op == "call_function" and node.target in _ADD_FUNCTIONS) or (
        node.op == "call_method" and node.target == "add")
    if not is_add or len(node.args) != 2 or node.kwargs:
        return None
    other = node.args[1] if node.args[0] is value else node.args[0] if node.args[1] is value else None
    if not isinstance(other, fx.Node) or other is value:
        return None
    a, b = value.meta.get("tensor_meta"), other.meta.get("tensor_meta")
    if a is None or b is None or tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype:
        return None
    return other


def _only_user(node: fx.Node) -> fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def _chain_start(node: fx.Node, module: nn.Module, report: FusionReport) -> tuple[nn.Conv2d, int, str] | None:
    """(conv, upscale it starts with, description) for a node a conv chain can start at, else None."""
    if isinstance(module, nn.ConvTranspose2d):
        reason = subpixel_unsupported_reason(module) or subpixel_slower_reason(module)
        if reason is None and (len(node.args) != 1 or node.kwargs):
            reason = "called with an output size"
        if reason is not None:
            report.skipped.append(f"{node.target}: ConvTranspose2d kept ({reason})")
            return None
        return subpixel_conv(module), module.stride[0], "transposed conv as sub-pixel conv"
    if not isinstance(module, nn.Conv2d):
        return None
    if not conv_is_fusable(module):
        report.skipped.append(f"{node.target}: {type(module).__name__} padding_mode={module.padding_mode}")
        return None
    return module, 1, "conv"


def _fuse_graph(gm: fx.GraphModule, backend: str, report: FusionReport) -> None:
    modules = dict(gm.named_modules())
    graph = gm.graph
    for node in list(graph.nodes):
        if node.op != "call_module" or node.graph is not graph:
            continue
        module = modules.get(node.target)
        if isinstance(module, GDN):
            fused_name = node.target.replace(".", "_") + "_fused"
            gm.add_submodule(fused_name, FusedGDN(module, backend))
            report.fused.append(f"{node.target}: GDN(inverse={module.inverse})")
            node.target = fused_name
            continue
        start = _chain_start(node, module, report)
        if start is None:
            continue
        conv, upscale, kind = start
        activation, slope, residual = "none", 0.01, None
        chain, last = [node], node
        while (user := _only_user(last)) is not None:
            if activation == "none" and (act := _activation(user, modules)) is not None:
                activation, slope = act
            elif upscale == 1 and (factor := _upscale(user, modules)) is not None:
                upscale = factor
            elif residual is None and (other := _residual(user, last)) is not None:
                residual = other
                chain.append(user)
                last = user
                break
            else:
                break
            chain.append(user)
            last = user
        fused_name = node.target.replace(".", "_") + "_fused"
        gm.add_submodule(fused_name, FusedConv2d(conv, activation, slope, upscale, backend))
        with graph.inserting_after(last):
            args = (node.args[0],) if residual is None else (node.args[0], residual)
            fused = graph.call_module(fused_name, args)
        fused.meta = dict(last.meta)
        last.replace_all_uses_with(fused)
        for dead in reversed(chain):
            graph.erase_node(dead)
        parts = [p for p, on in (("act=" + activation, activation != "none"), (f"shuffle x{upscale}", upscale > 1),
                                 ("+residual", residual is not None)) if on]
        report.fused.append(f"{node.target}: {kind}" + "".join(f" + {p}" for p in parts))
    graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()


def _normalise(example_inputs) -> tuple:
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    return tuple(example_inputs)


def fuse_module(module: nn.Module, example_inputs, backend: str = "auto") -> tuple[nn.Module, FusionReport]:
    """Return a copy-free rewrite of ``module`` with fused layers (the input is not modified).

    Args:
        module: any module in eval mode.
        example_inputs: positional inputs (tuple) for shape propagation; a single tensor is fine.
        backend: the ops backend the fused layers call.

    Returns:
        (new module, report). Parameters of untouched layers are shared with ``module``.
    """
    report = FusionReport()
    if isinstance(module, GDN):
        report.fused.append(f"GDN(inverse={module.inverse})")
        return FusedGDN(module, backend), report
    if isinstance(module, nn.Conv2d) and conv_is_fusable(module):
        report.fused.append("conv")
        return FusedConv2d(module, backend=backend), report
    if isinstance(module, DeformConv2d):
        report.skipped.append("DeformConv2d: no fused kernel, kept as it is")
        return module, report
    try:
        graph = _Tracer().trace(module)
        gm = fx.GraphModule(module, graph, type(module).__name__)
        with torch.no_grad():
            ShapeProp(gm).propagate(*_normalise(example_inputs))
    except Exception as error:  # noqa: BLE001 - any trace failure: recurse into children
        report.skipped.append(f"<{type(module).__name__}> not traceable ({type(error).__name__}); fused per child")
        return _fuse_children(module, backend, report), report
    _fuse_graph(gm, backend, report)
    return gm, report


def _fuse_children(module: nn.Module, backend: str, report: FusionReport, prefix: str = "") -> nn.Module:
    """Fuse inside the children of a module fx cannot trace, without shapes (so no residual adds:
    their shapes cannot be checked); the module's own forward is kept."""
    out = copy.copy(module)
    out._modules = dict(module._modules)
    for name, child in module.named_children():
        if isinstance(child, GDN):
            out._modules[name] = FusedGDN(child, backend)
            report.fused.append(f"{prefix}{name}: GDN(inverse={child.inverse})")
            continue
        if not len(child._modules):
            continue
        try:
            gm = fx.GraphModule(child, _Tracer().trace(child), type(child).__name__)
        except Exception:  # noqa: BLE001 - not traceable: go one level down
            out._modules[name] = _fuse_children(child, backend, report, f"{prefix}{name}.")
            continue
        sub = FusionReport()
        _fuse_graph(gm, backend, sub)
        report.extend(sub, f"{prefix}{name}.")
        out._modules[name] = gm
    return out
