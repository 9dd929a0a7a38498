"""Channel rules shared by leaf modules and their functional forms: conv, linear, pass-through.

Convolutions (any rank, plain or transposed):
* ``groups == 1``: new output channels (weight out-dim and bias are producers), input channels
  are consumed (weight in-dim) and must be zero when pruned.
* depthwise (one input channel per group, any channel multiplier): the layer is channel-wise;
  output channel ``o`` belongs to the unit of input channel ``o // multiplier``; weight and bias
  are producers of that unit (masking them makes the output exactly zero).
* other grouped convs: channel ``j`` of every group is coupled across the groups (input and
  output side), so the pruned layer keeps equal groups.
Deformable convs add coupling across offset groups (unless the layer supports uneven offset
groups) and fix the offset/mask inputs.
"""
from __future__ import annotations

import math

import torch

from lwdvc_kernels.compaction.graph import UnsupportedOpError, Val

__all__ = ["conv_rule", "linear_rule", "split_param", "param_ref"]


def split_param(qualname: str) -> tuple[str, str]:
    """``'a.b.weight'`` -> ``('a.b', 'weight')``."""
    owner, _, attr = qualname.rpartition(".")
    return owner, attr


def param_ref(tr, t: torch.Tensor | None, role: str) -> tuple[str, str] | None:
    """(owner, attr) of a tensor used as a layer's weight/bias: a parameter, or a tensor computed
    in forward from parameters (its records move onto them); raises for anything else."""
    if t is None:
        return None
    v = tr.val(t)
    if v is not None and v.param is not None:
        return split_param(v.param)
    key = tr.computed_key(t)
    if key is None:
        raise UnsupportedOpError(
            f"{tr.g.node}: the {role} of this op is computed in forward from the module's inputs, "
            f"not from its parameters (inside module {tr.where()!r}); describe that module with a handler: "
            "channel_groups/compact(..., handlers={ItsType: handler}) or "
            "lwdvc_kernels.compaction.register_module_handler (docs/ADDING_A_LAYER.md)"
        )
    return key


def _union_blocks(tr, labels: list[int], blocks: int) -> None:
    """Couple channel j of every one of ``blocks`` equal blocks of ``labels``."""
    size = len(labels) // blocks
    for k in range(1, blocks):
        tr.g.union_lists(labels[:size], labels[k * size : (k + 1) * size])


def conv_rule(
    tr,
    x: torch.Tensor,
    out: torch.Tensor,
    weight: tuple[str, str],
    bias: tuple[str, str] | None,
    weight_shape: torch.Size,
    groups: int,
    transposed: bool,
    weight_like: tuple[str, ...] = (),
    offset_groups: int = 1,
    sampling_taps: int = 0,
) -> Val:
    """Channel rule and MAC terms of a (transposed / grouped / deformable) convolution.

    Args:
        tr: the tracer.
        x: input [N, C_in, *spatial]; out: output [N, C_out, *spatial'].
        weight, bias: (owner, attr) of the weight and bias (bias may be None).
        weight_shape: conv [C_out, C_in/g, *k] or transposed [C_in, C_out/g, *k].
        groups: conv groups; transposed: ConvTranspose layout.
        weight_like: attrs of the owner shaped like the weight (e.g. an autoregressive mask).
        offset_groups: deformable offset groups that need equal input-channel splits.
        sampling_taps: >0 for deformable convs: MACs per sampled input value (bilinear 4).

    Returns:
        The output's channel information.
    """
    g = tr.g
    c_in, c_out = x.shape[1], out.shape[1]
    in_labels, in_zero = g.along(tr.val(x), x, 1)
    ksize = math.prod(weight_shape[2:])
    batch = x.shape[0]
    positions = math.prod(x.shape[2:]) if transposed else math.prod(out.shape[2:])
    scale = batch * positions * ksize
    w_out_dim, w_in_dim = (1, 0) if transposed else (0, 1)
    owner, attr = weight
    per_group_in = c_in // groups
    if groups > 1 and per_group_in == 1:
        multiplier = c_out // groups
        out_labels = [in_labels[o // multiplier] for o in range(c_out)]
        maskable = g.record(owner, attr, 0, "producer", in_labels if transposed else out_labels, True)
        for extra in weight_like:
            g.record(owner, extra, 0, "passive", in_labels if transposed else out_labels)
        g.term(scale, [out_labels])
    else:
        if offset_groups > 1:
            _union_blocks(tr, in_labels, offset_groups)
        if groups > 1:
            _union_blocks(tr, in_labels, groups)
        g.require_zero(in_labels, in_zero, "convolution")
        out_labels = g.new(c_out)
        if groups > 1:
            _union_blocks(tr, out_labels, groups)
        out_w = out_labels[: weight_shape[w_out_dim]]
        in_w = in_labels[: weight_shape[w_in_dim]]
        maskable = g.record(owner, attr, w_out_dim, "producer", out_w, True)
        g.record(owner, attr, w_in_dim, "consumer", in_w)
        for extra in weight_like:
            g.record(owner, extra, w_out_dim, "passive", out_w)
            g.record(owner, extra, w_in_dim, "passive", in_w)
        g.term(scale, [out_labels, in_labels], groups)
        if sampling_taps:
            g.term(batch * math.prod(out.shape[2:]) * ksize * sampling_taps, [in_labels])
    if bias is not None:
        maskable = g.record(bias[0], bias[1], 0, "producer", out_labels, True) and maskable
    return Val(1, out_labels, [maskable] * c_out)


def linear_rule(
    tr, x: torch.Tensor, out: torch.Tensor, weight: tuple[str, str], bias: tuple[str, str] | None
) -> Val:
    """``y = x @ W.T + b`` over the last dim: new output features, consumed input features."""
    g = tr.g
    in_labels, in_zero = g.along(tr.val(x), x, x.dim() - 1)
    g.require_zero(in_labels, in_zero, "linear layer")
    out_labels = g.new(out.shape[-1])
    maskable = g.record(weight[0], weight[1], 0, "producer", out_labels, True)
    g.record(weight[0], weight[1], 1, "consumer", in_labels)
    if bias is not None:
        maskable = g.record(bias[0], bias[1], 0, "producer", out_labels, True) and maskable
    rows = x.numel() // max(1, x.shape[-1])
    g.term(rows, [out_labels, in_labels])
    return Val(out.dim() - 1, out_labels, [maskable] * len(out_labels))
