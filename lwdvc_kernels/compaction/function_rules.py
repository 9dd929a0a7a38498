"""Channel rules for torch functions and tensor methods, keyed by normalised name.

Each rule receives ``(tracer, func, args, kwargs, out)`` for a call that reads at least one
channel-carrying tensor and sets the channel info of ``out``. Families:

* elementwise unary (activations, casts, rounding): channel-wise; ``zero`` survives only if the
  function maps 0 to 0 (checked by calling it on a zero tensor, so ``sigmoid``, ``exp``,
  ``x + 1`` or ``clamp(min=0.1)`` are caught without a table of exceptions).
* elementwise binary (add/sub/max/min: zero iff all operands are zero; mul: iff any is; div:
  iff the numerator is and the denominator is not): operands that carry channels on the same
  dim are coupled channel by channel. A parameter broadcast along the channels (a learnt bias or
  scale) is sliced with them (an added one is also masked); a constant with one value per channel
  fixes them; a channel-carrying operand broadcast over the channels fixes its own channel.
* shape/indexing ops (view, reshape, permute, slicing, split, chunk, repeat, flip...): followed
  exactly by applying the op to a *probe* tensor holding each element's channel index.
* cat/stack, pad, pixel (un)shuffle, spatial resampling (interpolate, pooling, grid_sample:
  the grid is fixed), reductions, softmax, conv/linear/deformable-conv functionals.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from lwdvc_kernels.compaction import layer_rules
from lwdvc_kernels.compaction.graph import UnsupportedOpError, Val
from lwdvc_kernels.compaction.trace import iter_tensors
from lwdvc_kernels.macs import count_macs_of_call

RULES: dict[str, Callable] = {}

# Ops that count_macs counts; a call on constants adds a constant MAC term.
_MAC_OPS = {
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "linear", "matmul", "mm", "bmm", "addmm", "baddbmm", "einsum", "grid_sample",
    "deform_conv2d", "convolution",
}


def rule(*names: str):
    def register(fn):
        for n in names:
            RULES[n] = fn
        return fn

    return register


def constant_call(tr, name, func, args, kwargs, out) -> None:
    """A call on constants/untracked values: only its MACs matter."""
    if name in _MAC_OPS:
        tr.g.term(count_macs_of_call(func, args, kwargs), [])


def _arg(args, kwargs, index: int, name: str, default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _first_tensor(args, kwargs) -> torch.Tensor:
    for key in ("input", "self"):
        if isinstance(kwargs.get(key), torch.Tensor):
            return kwargs[key]
    return next(iter_tensors(args))


def _replace_first(args, kwargs, x, new) -> tuple[tuple, dict]:
    args = tuple(new if a is x else a for a in args)
    kwargs = {k: (new if v is x else v) for k, v in kwargs.items()}
    return args, kwargs


def maps_zero_to_zero(func, args, kwargs, x: torch.Tensor) -> bool:
    """True when ``func`` applied to an all-zero ``x`` (other arguments unchanged) is zero."""
    zeros = torch.zeros_like(x)
    a, k = _replace_first(args, kwargs, x, zeros)
    try:
        result = func(*a, **k)
    except (RuntimeError, TypeError, ValueError):
        return False
    first = next(iter_tensors(result), None)
    return first is not None and bool((first == 0).all())


# -- elementwise --------------------------------------------------------------------------
@rule(
    "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "gelu", "silu", "elu", "elu_", "selu",
    "celu", "mish", "hardtanh", "hardtanh_", "hardswish", "hardsigmoid", "softplus", "softsign",
    "sigmoid", "sigmoid_", "tanh", "tanh_", "exp", "abs", "abs_", "neg", "negative", "sqrt",
    "rsqrt", "square", "clamp", "clamp_", "clip", "clamp_min", "clamp_max", "clamp_min_",
    "round", "floor", "ceil", "trunc", "sign", "sgn", "log", "log1p", "expm1", "sin", "cos",
    "reciprocal", "erf", "logsigmoid", "threshold", "nan_to_num", "dropout", "dropout1d",
    "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "float", "double",
    "half", "bfloat16", "to", "type", "type_as", "contiguous", "clone", "detach", "detach_",
    "requires_grad_", "cpu", "cuda", "get_data", "pow", "pow_", "rpow", "softshrink",
    "hardshrink", "tanhshrink",
)
def _unary(tr, func, args, kwargs, out) -> None:
    x = _first_tensor(args, kwargs)
    others = [t for t in iter_tensors((args, kwargs)) if t is not x]
    if any(tr.labeled(t) for t in others) or not tr.labeled(x):
        if func_name_of(func) in ("pow", "pow_", "rpow"):
            return _binary(tr, func, args, kwargs, out, "pow")
        raise UnsupportedOpError(
            f"{tr.g.node}: elementwise op with a channel-carrying second operand is not supported"
        )
    v = tr.val(x)
    keeps_zero = maps_zero_to_zero(func, args, kwargs, x)
    tr.set(out, Val(v.cdim, v.labels, [z and keeps_zero for z in v.zero]))


def func_name_of(func) -> str:
    from lwdvc_kernels.compaction.trace import func_name

    return func_name(func)


_BINARY = {
    "add": "sum", "add_": "sum", "iadd": "sum", "radd": "sum", "sub": "sum", "sub_": "sum",
    "isub": "sum", "rsub": "sum", "subtract": "sum", "maximum": "sum", "minimum": "sum",
    "fmax": "sum", "fmin": "sum", "mul": "prod", "mul_": "prod", "imul": "prod",
    "rmul": "prod", "multiply": "prod", "div": "div", "div_": "div", "idiv": "div",
    "itruediv": "div", "truediv": "div", "true_divide": "div", "divide": "div",
    "rtruediv": "rdiv", "rdiv": "rdiv",
}


def _operands(args, kwargs) -> list[Any]:
    first = _arg(args, kwargs, 0, "input", kwargs.get("self"))
    second = _arg(args, kwargs, 1, "other")
    return [first, second]


@rule(*_BINARY)
def _binary_rule(tr, func, args, kwargs, out) -> None:
    _binary(tr, func, args, kwargs, out, _BINARY[func_name_of(func)])


@rule("max", "min")
def _max_min(tr, func, args, kwargs, out) -> None:
    if isinstance(_arg(args, kwargs, 1, "other"), torch.Tensor):
        return _binary(tr, func, args, kwargs, out, "sum")
    return _reduce(tr, func, args, kwargs, out)


def _binary(tr, func, args, kwargs, out, kind: str) -> None:
    """Elementwise op of two operands with broadcasting (see the module docstring)."""
    g = tr.g
    operands = _operands(args, kwargs)
    if kind == "rdiv":
        operands, kind = operands[::-1], "div"
    result = next(iter_tensors(out))
    nd = result.dim()
    cdims = {tr.val(o).cdim + nd - o.dim() for o in operands if tr.labeled(o)}
    if len(cdims) != 1:
        for o in operands:
            if tr.labeled(o):
                g.fix(tr.val(o).labels, "operands carry channels on different dims")
        return tr.set_untracked(out, False)
    cd = cdims.pop()
    channels = result.shape[cd]
    ref: list[int] | None = None
    zeros: list[list[bool]] = []
    params: list[tuple[tuple[str, str], int]] = []
    fix_reason = None
    for o in operands:
        if not isinstance(o, torch.Tensor):
            zeros.append([o == 0] * channels)
            continue
        v = tr.val(o)
        j = cd - (nd - o.dim())
        size = o.shape[j] if 0 <= j < o.dim() else 1
        if v is not None and v.cdim is not None:
            if size == channels:
                if ref is None:
                    ref = v.labels
                else:
                    g.union_lists(ref, v.labels)
                zeros.append(v.zero)
            else:
                g.fix(v.labels, "channel map broadcast over channels")
                zeros.append([False] * channels)
        elif size == channels and channels > 1:
            key = _stored_or_computed(tr, o, v)
            if key is not None and kind in ("sum", "prod", "div"):
                params.append((key, j))
                zeros.append([kind == "sum"] * channels)
            else:
                fix_reason = "per-channel constant computed in forward"
                zeros.append([False] * channels)
        else:
            is_const = v is None or v.const
            zeros.append([is_const and bool((o == 0).all())] * channels)
    assert ref is not None
    if fix_reason:
        g.fix(ref, fix_reason)
    for (owner, attr), dim in params:
        if kind == "sum":
            if not g.record(owner, attr, dim, "producer", ref, True):
                zeros = [[False] * channels]  # an added tensor that masking does not zero
        else:
            g.record(owner, attr, dim, "passive", ref)
    if kind == "sum":
        zero = [all(z) for z in zip(*zeros)]
    elif kind == "prod":
        zero = [any(z) for z in zip(*zeros)]
    elif kind == "div":
        zero = [a and not b for a, b in zip(zeros[0], zeros[1])]
    else:  # pow with a tensor exponent
        zero = [False] * channels
    tr.set(result, Val(cd, ref, zero))


def _stored_or_computed(tr, t: torch.Tensor, v: Val | None) -> tuple[str, str] | None:
    """(owner, attr) of a parameter, or the key of a tensor computed from parameters, or None."""
    if v is None:
        return None
    if v.param is not None:
        return layer_rules.split_param(v.param)
    return tr.computed_key(t) if v.derived is not None else None


def spatial_val(tr, x: torch.Tensor) -> Val:
    """Channel-wise spatial resampling of an [N, C, *spatial] map: channels pass unchanged."""
    v = tr.val(x)
    if v.cdim != 1:
        tr.g.fix(v.labels, "spatial op on a non-NCHW channel dim")
        return Val(const=False)
    return Val(1, v.labels, v.zero)


@rule(
    "interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "avg_pool1d",
    "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "adaptive_max_pool3d", "max_pool2d_with_indices", "grid_sample",
)
def _spatial(tr, func, args, kwargs, out) -> None:
    x = _first_tensor(args, kwargs)
    name = func_name_of(func)
    if not tr.labeled(x):
        raise UnsupportedOpError(f"{tr.g.node}: {name} with a channel-carrying non-input argument")
    val = spatial_val(tr, x)
    first = next(iter_tensors(out))
    tr.set(first, val)
    for extra in list(iter_tensors(out))[1:]:
        tr.set(extra, Val(const=False))
    if name == "grid_sample":
        grid = _arg(args, kwargs, 1, "grid")
        gv = tr.val(grid)
        if gv is not None and gv.cdim is not None:
            tr.g.fix(gv.labels, "grid_sample grid (flow) is never pruned")
        mode = _arg(args, kwargs, 2, "mode", "bilinear")
        taps = {"bilinear": 4, "nearest": 0, "bicubic": 16}[mode]
        if first.dim() == 5 and mode == "bilinear":
            taps = 8
        tr.g.term(first.shape[0] * math.prod(first.shape[2:]) * taps, [val.labels or tr.g.along(None, x, 1)[0]])


def _reduce(tr, func, args, kwargs, out) -> None:
    x = _first_tensor(args, kwargs)
    v = tr.val(x)
    dims = _arg(args, kwargs, 1, "dim", None)
    keepdim = bool(_arg(args, kwargs, 2, "keepdim", False))
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        tr.g.fix(v.labels, "full reduction")
        return tr.set_untracked(out, False)
    dims = [d % x.dim() for d in (dims if isinstance(dims, (list, tuple)) else [dims])]
    if v.cdim in dims:
        tr.g.fix(v.labels, "reduction over channels")
        return tr.set_untracked(out, False)
    cd = v.cdim if keepdim else v.cdim - sum(d < v.cdim for d in dims)
    outs = list(iter_tensors(out))
    tr.set(outs[0], Val(cd, v.labels, v.zero))
    for extra in outs[1:]:
        tr.set(extra, Val(const=False))


rule("mean", "sum", "amax", "amin", "std", "var", "nansum", "nanmean")(_reduce)


@rule("softmax", "log_softmax")
def _softmax(tr, func, args, kwargs, out) -> None:
    x = _first_tensor(args, kwargs)
    v = tr.val(x)
    dim = _arg(args, kwargs, 1, "dim") % x.dim()
    if dim == v.cdim:
        tr.g.fix(v.labels, "softmax over channels")
    tr.set(out, Val(v.cdim, v.labels, [False] * len(v.labels)))


# -- layers in functional form ----------------------------------------------------------
@rule("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
def _conv(tr, func, args, kwargs, out) -> None:
    name = func_name_of(func)
    x, weight = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
    bias = _arg(args, kwargs, 2, "bias")
    transposed = name.startswith("conv_transpose")
    groups = _arg(args, kwargs, 6 if transposed else 6, "groups", 1)
    w = layer_rules.param_ref(tr, weight, "weight")
    b = layer_rules.param_ref(tr, bias, "bias")
    tr.set(out, layer_rules.conv_rule(tr, x, out, w, b, weight.shape, int(groups), transposed))


@rule("linear")
def _linear(tr, func, args, kwargs, out) -> None:
    x, weight = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
    w = layer_rules.param_ref(tr, weight, "weight")
    b = layer_rules.param_ref(tr, _arg(args, kwargs, 2, "bias"), "bias")
    tr.set(out, layer_rules.linear_rule(tr, x, out, w, b))


def _is_lwdvc_op(func) -> bool:
    return str(getattr(func, "_qualified_op_name", "")).startswith("lwdvc::") or \
        str(getattr(func, "namespace", "")) == "lwdvc"


@rule("deform_conv2d")
def _deform_conv(tr, func, args, kwargs, out) -> None:
    """``torch.ops.torchvision.deform_conv2d(input, weight, offset, mask, bias, sh, sw, ph, pw,
    dh, dw, groups, offset_groups, use_mask)`` or ``torch.ops.lwdvc.deform_conv2d(input, weight,
    offset, bias, stride, padding, dilation, groups, offset_groups, offset_group_sizes)``: offsets
    and mask are fixed; explicit (uneven) offset group sizes leave the input channels uncoupled."""
    if _is_lwdvc_op(func):
        (x, weight, offset, bias), mask = args[:4], None
        groups, offset_groups = int(args[7]), int(args[8])
        if _arg(args, kwargs, 9, "offset_group_sizes") is not None:
            offset_groups = 1
    else:
        x, weight, offset, mask, bias = args[:5]
        groups, offset_groups = int(args[11]), int(args[12])
    for t in (offset, mask):
        if tr.labeled(t):
            tr.g.fix(tr.val(t).labels, "deformable-conv offsets/mask are never pruned")
    w = layer_rules.param_ref(tr, weight, "weight")
    b = None if bias is None else _stored_or_computed(tr, bias, tr.val(bias))
    if b is None and bias is not None and bool((bias != 0).any()):
        raise UnsupportedOpError(f"{tr.g.node}: deform_conv2d bias is not a model parameter")
    val = layer_rules.conv_rule(
        tr, x, out, w, b, weight.shape, groups, False, offset_groups=offset_groups, sampling_taps=4
    )
    tr.set(out, val)


@rule("prelu")
def _prelu(tr, func, args, kwargs, out) -> None:
    x, weight = args[0], args[1]
    v = tr.val(x)
    if weight.numel() > 1:
        owner, attr = layer_rules.param_ref(tr, weight, "weight")
        tr.g.record(owner, attr, 0, "passive", v.labels)
    tr.set(out, Val(v.cdim, v.labels, v.zero))


# Shape, indexing, concatenation and pixel-shuffle rules, and products of two tensors, live in
# their own files.
from lwdvc_kernels.compaction import contraction_rules, shape_rules  # noqa: E402,F401  (register their rules)
