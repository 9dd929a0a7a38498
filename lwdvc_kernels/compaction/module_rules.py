"""Per-layer handlers: the registry ``{leaf module type -> handler}``.

A handler describes one layer type to the channel analysis (``trace``: how channels flow, which
of its tensors are producers/consumers/passive, its MACs) and repairs the layer's attributes
after its tensors were sliced (``finalize``: ``in_channels``, ``num_features``...). A module is a
leaf when its type (or a base class whose ``forward`` it does not override) is registered;
other modules are traced through. Register your own layers with
:func:`register_module_handler`, or hand them to one call (``channel_groups(model, inputs,
handlers={MyLayer: MyHandler()})``, the same for ``compact``); docs/ADDING_A_LAYER.md has a
worked example.

Zero handling of norms: an affine norm is a *producer* of its channels (weight and bias are
masked), so its output is exactly zero for a pruned channel whatever the running statistics are
(this folds BatchNorm's shift). A norm without affine parameters whose output is not zero for a
zero input (BatchNorm with running statistics) fixes nothing by itself: its channels lose the
``zero`` flag, so a channel-mixing consumer downstream fixes them. GroupNorm normalises blocks
of channels together: each block is kept or removed whole. LayerNorm over the channel dim
normalises across all channels: it fixes them.
"""
from __future__ import annotations

import torch
from torch import nn

from lwdvc_kernels.compaction import function_rules as fr
from lwdvc_kernels.compaction import layer_rules
from lwdvc_kernels.compaction import shape_rules as sr
from lwdvc_kernels.compaction.graph import Val
from lwdvc_kernels.compaction.trace import iter_tensors

__all__ = ["ModuleHandler", "MODULE_RULES", "register_module_handler", "finalize_module", "module_rules_with"]

Kept = dict[tuple[str, int], torch.Tensor]


class ModuleHandler:
    """Base handler: subclasses implement ``trace`` and, if needed, ``finalize``."""

    def trace(self, tr, module: nn.Module, qualname: str, args: tuple, kwargs: dict, out) -> None:
        raise NotImplementedError

    def finalize(self, module: nn.Module, kept: Kept) -> None:
        """Update the module's attributes after its tensors were sliced to ``kept`` indices."""


MODULE_RULES: dict[type, ModuleHandler] = {}


def _check_handler(module_type, handler, where: str) -> None:
    if not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
        raise TypeError(f"{where}: {module_type!r} is not an nn.Module subclass")
    if not isinstance(handler, ModuleHandler):
        raise TypeError(f"{where}: the handler of {module_type.__name__} is {handler!r}, not a ModuleHandler")


def register_module_handler(module_type: type, handler: ModuleHandler) -> None:
    """Make ``module_type`` a leaf of the channel analysis described by ``handler`` (for every
    later call; pass ``handlers=`` to ``channel_groups`` / ``compact`` for one call only)."""
    _check_handler(module_type, handler, "register_module_handler")
    MODULE_RULES[module_type] = handler


def module_rules_with(handlers=None) -> dict[type, ModuleHandler]:
    """The registered handlers updated by a call's own ``{module type: handler}`` (checked)."""
    rules = dict(MODULE_RULES)
    if handlers is None:
        return rules
    if not hasattr(handlers, "items"):
        raise TypeError(f"handlers must be a dict {{module type: ModuleHandler}}, got {type(handlers).__name__}")
    for module_type, handler in handlers.items():
        _check_handler(module_type, handler, "handlers")
        rules[module_type] = handler
    return rules


def finalize_module(module: nn.Module, kept: Kept, rules: dict[type, ModuleHandler] | None = None) -> None:
    """Run the ``finalize`` of ``module``'s type (first match along its MRO) in ``rules``
    (default: the registered handlers)."""
    rules = MODULE_RULES if rules is None else rules
    for cls in type(module).__mro__:
        if cls in rules:
            rules[cls].finalize(module, kept)
            return


def _input(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else next(iter(kwargs.values()))


def _bias(qualname: str, module: nn.Module) -> tuple[str, str] | None:
    return (qualname, "bias") if getattr(module, "bias", None) is not None else None


class ConvHandler(ModuleHandler):
    """Conv1d/2d/3d and ConvTranspose1d/2d/3d; ``weight_like`` names weight-shaped buffers."""

    def __init__(self, weight_like: tuple[str, ...] = ()) -> None:
        self.weight_like = weight_like

    def trace(self, tr, module, qualname, args, kwargs, out) -> None:
        x = _input(args, kwargs)
        val = layer_rules.conv_rule(
            tr, x, out, (qualname, "weight"), _bias(qualname, module), module.weight.shape,
            module.groups, module.transposed, self.weight_like,
        )
        tr.set(out, val)

    def finalize(self, module, kept) -> None:
        w = module.weight
        old_groups = module.groups
        depthwise = old_groups > 1 and module.in_channels // old_groups == 1
        if module.transposed:
            if depthwise:
                module.groups = w.shape[0]
            module.in_channels, module.out_channels = w.shape[0], w.shape[1] * module.groups
        else:
            if depthwise:
                module.groups = w.shape[0] // (module.out_channels // old_groups)
            module.out_channels, module.in_channels = w.shape[0], w.shape[1] * module.groups


class LinearHandler(ModuleHandler):
    def trace(self, tr, module, qualname, args, kwargs, out) -> None:
        x = _input(args, kwargs)
        tr.set(out, layer_rules.linear_rule(tr, x, out, (qualname, "weight"), _bias(qualname, module)))

    def finalize(self, module, kept) -> None:
        module.out_features, module.in_features = module.weight.shape


class NormHandler(ModuleHandler):
    """BatchNorm, InstanceNorm, GroupNorm (see the module docstring for zero handling)."""

    def trace(self, tr, module, qualname, args, kwargs, out) -> None:
        x = _input(args, kwargs)
        v = tr.val(x)
        if v is None or v.cdim != 1:
            if v is not None and v.cdim is not None:
                tr.g.fix(v.labels, "norm over a moved channel dim")
            return tr.set(out, Val(const=False))
        if isinstance(module, nn.GroupNorm):
            couple_norm_groups(tr, v.labels, module.num_groups)
        affine = getattr(module, "weight", None) is not None
        for name in ("running_mean", "running_var"):
            if getattr(module, name, None) is not None:
                tr.g.record(qualname, name, 0, "passive", v.labels)
        if affine:
            tr.g.record(qualname, "weight", 0, "producer", v.labels)
            if module.bias is not None:
                tr.g.record(qualname, "bias", 0, "producer", v.labels)
            zero = [True] * len(v.labels)
        else:
            zero = [z and fr.maps_zero_to_zero(module, (x,), {}, x) for z in v.zero]
        tr.set(out, Val(1, v.labels, zero))

    def finalize(self, module, kept) -> None:
        for name in ("weight", "running_mean"):
            t = getattr(module, name, None)
            if t is not None:
                channels = t.shape[0]
                break
        else:
            return
        if isinstance(module, nn.GroupNorm):
            per_group = module.num_channels // module.num_groups
            module.num_channels, module.num_groups = channels, channels // per_group
        else:
            module.num_features = channels


def couple_norm_groups(tr, labels: list[int], num_groups: int) -> None:
    """GroupNorm normalises each block of ``C / num_groups`` channels together: a block is kept or
    removed whole (the other blocks' statistics do not change), so its channels are coupled."""
    per_group = len(labels) // num_groups
    for k in range(num_groups):
        block = labels[k * per_group:(k + 1) * per_group]
        for e in block[1:]:
            tr.g.union(block[0], e)


class LayerNormHandler(ModuleHandler):
    def trace(self, tr, module, qualname, args, kwargs, out) -> None:
        x = _input(args, kwargs)
        v = tr.val(x)
        normalized = range(x.dim() - len(module.normalized_shape), x.dim())
        if v.cdim in normalized:
            tr.g.fix(v.labels, "LayerNorm over the channel dim")
            return tr.set(out, Val(v.cdim, v.labels, [False] * len(v.labels)))
        keeps = getattr(module, "bias", None) is None
        tr.set(out, Val(v.cdim, v.labels, [z and keeps for z in v.zero]))


class ElementwiseHandler(ModuleHandler):
    """Activations and other channel-wise modules; zero survives iff module(0) == 0."""

    def trace(self, tr, module, qualname, args, kwargs, out) -> None:
        x = _input(args, kwargs)
        v = tr.val(x)
        if v is None or v.cdim is None:
            return tr.set(out, Val(const=v is None or v.const))
        if isinstance(module, nn.PReLU) and module.num_parameters > 1:
            tr.g.record(qualname, "weight", 0, "passive", v.labels)
            return tr.set(out, Val(v.cdim, v.labels, v.zero))
        keeps = fr.maps_zero_to_zero(module, (x,), {}, x)
        tr.set(out, Val(v.cdim, v.labels, [z and keeps for z in v.zero]))

    def finalize(self, module, kept) -> None:
        if isinstance(module, nn.PReLU):
            module.num_parameters = module.weight.shape[0]


class PixelShuffleHandler(ModuleHandler):
    def trace(self, tr, module, qualname, args, kwargs, out) -> None:
        x = _input(args, kwargs)
        inverse = isinstance(module, nn.PixelUnshuffle)
        factor = module.downscale_factor if inverse else module.upscale_factor
        if not tr.labeled(x):
            return tr.set(out, Val(const=False))
        tr.set(out, sr.pixel_shuffle_val(tr, tr.val(x), x, factor, inverse))


class SpatialHandler(ModuleHandler):
    """Upsample and pooling modules: channel-wise resampling."""

    def trace(self, tr, module, qualname, args, kwargs, out) -> None:
        x = _input(args, kwargs)
        if not tr.labeled(x):
            return tr.set_untracked(out, False)
        outs = list(iter_tensors(out))
        tr.set(outs[0], fr.spatial_val(tr, x))
        for extra in outs[1:]:
            tr.set(extra, Val(const=False))


class ProbeHandler(ModuleHandler):
    """Flatten/Unflatten: followed with the channel-index probe."""

    def trace(self, tr, module, qualname, args, kwargs, out) -> None:
        sr._probe(tr, module, args, kwargs, out)


class SoftmaxHandler(ModuleHandler):
    def trace(self, tr, module, qualname, args, kwargs, out) -> None:
        x = _input(args, kwargs)
        fr._softmax(tr, None, (x, module.dim if module.dim is not None else 1), {}, out)


def _register_defaults() -> None:
    conv = ConvHandler()
    for cls in (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d):
        MODULE_RULES[cls] = conv
    MODULE_RULES[nn.Linear] = LinearHandler()
    norm = NormHandler()
    for cls in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d,
                nn.InstanceNorm3d, nn.GroupNorm, nn.SyncBatchNorm):
        MODULE_RULES[cls] = norm
    MODULE_RULES[nn.LayerNorm] = LayerNormHandler()
    elementwise = ElementwiseHandler()
    for cls in (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
                nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus,
                nn.Softsign, nn.Tanhshrink, nn.Softshrink, nn.Hardshrink, nn.LogSigmoid, nn.Threshold,
                nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout):
        MODULE_RULES[cls] = elementwise
    shuffle = PixelShuffleHandler()
    MODULE_RULES[nn.PixelShuffle] = MODULE_RULES[nn.PixelUnshuffle] = shuffle
    spatial = SpatialHandler()
    for cls in (nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d, nn.AvgPool1d, nn.AvgPool2d,
                nn.AvgPool3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveAvgPool1d,
                nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
                nn.AdaptiveMaxPool3d):
        MODULE_RULES[cls] = spatial
    MODULE_RULES[nn.Flatten] = MODULE_RULES[nn.Unflatten] = ProbeHandler()
    MODULE_RULES[nn.Softmax] = MODULE_RULES[nn.LogSoftmax] = SoftmaxHandler()


_register_defaults()
