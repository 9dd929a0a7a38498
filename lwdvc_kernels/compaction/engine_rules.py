"""Handlers of the engine's own layers (lwdvc_kernels.nn) and of torchvision's DeformConv2d.

* GDN/IGDN: channel-wise (a zero input channel stays zero: ``0 / norm`` and ``0 * norm``), but
  the norm mixes channels through ``gamma`` [C, C], so its input channels must be zero when
  pruned. ``beta`` [C] and both dims of ``gamma`` are sliced, never masked. MACs: the 1x1 conv
  of ``x**2`` with ``gamma`` (N * H * W * C * C).
* MaskedConv2d: a conv whose ``mask`` buffer (shaped like the weight) is sliced with it.
* DeformConv2d (engine): input/output channels prunable; its ``conv_offset`` reads the offset
  feature (prunable input channels) and writes offsets (never pruned). The layer accepts uneven
  deformable groups, so input channels are not coupled across groups; ``finalize`` records the
  new ``group_sizes``.
* torchvision.ops.DeformConv2d: offset groups must stay even, so input channel ``j`` of every
  offset group is coupled; offsets and the modulation mask are fixed.
"""
from __future__ import annotations

import math

from lwdvc_kernels.compaction import layer_rules
from lwdvc_kernels.compaction.graph import Val
from lwdvc_kernels.compaction.module_rules import ConvHandler, ModuleHandler, _input, register_module_handler


class GDNHandler(ModuleHandler):
    def trace(self, tr, module, qualname, args, kwargs, out) -> None:
        x = _input(args, kwargs)
        labels, zero = tr.g.along(tr.val(x), x, 1)
        tr.g.require_zero(labels, zero, "GDN norm")
        tr.g.record(qualname, "beta", 0, "passive", labels)
        tr.g.record(qualname, "gamma", 0, "passive", labels)
        tr.g.record(qualname, "gamma", 1, "passive", labels)
        tr.g.term(x.shape[0] * math.prod(x.shape[2:]), [labels, labels])
        tr.set(out, Val(1, labels, list(zero)))

    def finalize(self, module, kept) -> None:
        module.in_channels = module.beta.shape[0]


class EngineDeformConvHandler(ModuleHandler):
    def trace(self, tr, module, qualname, args, kwargs, out) -> None:
        x = args[0] if args else kwargs["x"]
        feature = args[1] if len(args) > 1 else kwargs["offset_feature"]
        offset = module.conv_offset(feature)
        conv_q = f"{qualname}.conv_offset" if qualname else "conv_offset"
        off = module.conv_offset
        off_val = layer_rules.conv_rule(
            tr, feature, offset, (conv_q, "weight"), (conv_q, "bias"), off.weight.shape, off.groups, False
        )
        tr.g.fix(off_val.labels, "deformable-conv offsets are never pruned")
        bias = (qualname, "bias") if module.bias is not None else None
        val = layer_rules.conv_rule(
            tr, x, out, (qualname, "weight"), bias, module.weight.shape, 1, False, sampling_taps=4
        )
        tr.set(out, val)

    def finalize(self, module, kept) -> None:
        in_idx = kept.get(("weight", 1))
        if in_idx is not None:
            module.keep_input_channels(in_idx)


class TorchvisionDeformConvHandler(ModuleHandler):
    def trace(self, tr, module, qualname, args, kwargs, out) -> None:
        x = args[0] if args else kwargs["input"]
        offset = args[1] if len(args) > 1 else kwargs["offset"]
        mask = args[2] if len(args) > 2 else kwargs.get("mask")
        for t in (offset, mask):
            if tr.labeled(t):
                tr.g.fix(tr.val(t).labels, "deformable-conv offsets/mask are never pruned")
        taps = module.weight.shape[2] * module.weight.shape[3]
        bias = (qualname, "bias") if module.bias is not None else None
        val = layer_rules.conv_rule(
            tr, x, out, (qualname, "weight"), bias, module.weight.shape, module.groups, False,
            offset_groups=offset.shape[1] // (2 * taps), sampling_taps=4,
        )
        tr.set(out, val)

    def finalize(self, module, kept) -> None:
        module.out_channels = module.weight.shape[0]
        module.in_channels = module.weight.shape[1] * module.groups


def register_engine_layers() -> None:
    """Register the handlers above (called once when the compact package is imported)."""
    from lwdvc_kernels.nn.deform_conv import DeformConv2d
    from lwdvc_kernels.nn.gdn import GDN
    from lwdvc_kernels.nn.masked_conv import MaskedConv2d

    register_module_handler(GDN, GDNHandler())
    register_module_handler(MaskedConv2d, ConvHandler(weight_like=("mask",)))
    register_module_handler(DeformConv2d, EngineDeformConvHandler())
    try:
        import torchvision
    except ImportError:  # pragma: no cover
        return
    register_module_handler(torchvision.ops.DeformConv2d, TorchvisionDeformConvHandler())
