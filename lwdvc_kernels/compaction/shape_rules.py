"""Channel rules for shape and indexing ops, concatenation, padding and pixel (un)shuffle.

Shape/indexing ops (view, reshape, permute, slicing, split, chunk, repeat, flip...) are followed
exactly by applying the op to a *probe*: a tensor holding each element's channel index. Outputs
whose channel selection adapts to a smaller channel count (identity, flatten, repeat, flip) keep
their channels prunable; equal chunks/splits, and reshapes of the channel dim into equal blocks
(attention heads: ``[N, C, L] -> [N, heads, C / heads, L]``), couple channel j of every part;
selections at
positions written in the code (slices, index lists, uneven splits) fix their channels.
"""
from __future__ import annotations

import torch

from lwdvc_kernels.compaction.function_rules import _arg, _first_tensor, _replace_first, func_name_of, rule
from lwdvc_kernels.compaction.graph import Val
from lwdvc_kernels.compaction.trace import iter_tensors


def _channel_dim_of_probe(p: torch.Tensor) -> tuple[int, list[int]] | None:
    """The dim along which the probe's channel indices vary (and only along it), or None."""
    if p.numel() == 0 or int(p.min()) == int(p.max()):
        return None
    for d in range(p.dim()):
        if p.shape[d] == 1:
            continue
        flat = p.movedim(d, -1).reshape(-1, p.shape[d])
        if bool((flat == flat[0]).all()):
            return d, flat[0].tolist()
    return None


@rule(
    "view", "reshape", "flatten", "unflatten", "squeeze", "squeeze_", "unsqueeze", "unsqueeze_",
    "permute", "transpose", "transpose_", "movedim", "moveaxis", "swapaxes", "swapdims", "t",
    "get_T", "get_mT", "getitem", "narrow", "select", "expand", "expand_as", "repeat",
    "repeat_interleave", "split", "split_with_sizes", "chunk", "unbind", "tensor_split", "flip",
    "roll", "view_as", "reshape_as", "index_select", "gather", "take_along_dim", "tile",
)
def _probe(tr, func, args, kwargs, out) -> None:
    g = tr.g
    x = _first_tensor(args, kwargs)
    v = tr.val(x)
    if v is None or v.cdim is None:
        return tr.set_untracked(out, v is None or v.const)
    channels = x.shape[v.cdim]
    if channels == 1:
        g.fix(v.labels, "single channel reshaped")
        return tr.set_untracked(out, False)
    shape = [1] * x.dim()
    shape[v.cdim] = channels
    probe = torch.arange(channels, device=x.device).view(shape).expand(x.shape)
    try:
        a, k = _replace_first(args, kwargs, x, probe)
        p_out = func(*a, **k)
    except RuntimeError:
        probe = probe.contiguous()
        a, k = _replace_first(args, kwargs, x, probe)
        p_out = func(*a, **k)
    pairs = list(zip(iter_tensors(out), iter_tensors(p_out)))
    found = [_channel_dim_of_probe(p) for _, p in pairs]
    blocks = _equal_blocks([f[1] if f else None for f in found], channels)
    if blocks is not None:  # chunk / split into equal parts: channel j of every part coupled
        for idx in blocks[1:]:
            g.union_lists([v.labels[i] for i in blocks[0]], [v.labels[i] for i in idx])
    for (o, p), hit in zip(pairs, found):
        if hit is None:
            split = _split_channel_dims(p, channels)
            if split is not None:  # channels split into (blocks, per block), e.g. attention heads
                tr.set(o, _split_val(g, v, p, split))
                continue
            idx = sorted(set(p.flatten().tolist())) if p.numel() else []
            g.fix([v.labels[i] for i in idx], "channels merged with other dims")
            tr.set(o, Val(const=False))
            continue
        d, idx = hit
        if blocks is None and not _size_independent(idx, channels):
            g.fix(v.labels, "channels selected at fixed positions (slice, index, uneven split)")
        tr.set(o, Val(d, [v.labels[i] for i in idx], [v.zero[i] for i in idx]))


def _split_channel_dims(p: torch.Tensor, channels: int) -> tuple[int, int] | None:
    """Dims ``(a, b)``, ``a < b``, when the probe holds ``i_a * size_b + i_b`` (constant along every
    other dim) and covers all channels: a reshape of the channel dim into blocks (``a``) of
    consecutive channels (``b``), e.g. ``[N, C, L] -> [N, heads, C / heads, L]``."""
    varying = [d for d in range(p.dim()) if p.shape[d] > 1 and not bool((p == p.narrow(d, 0, 1)).all())]
    if len(varying) != 2:
        return None
    a, b = varying
    if p.shape[a] * p.shape[b] != channels:
        return None
    index = [0] * p.dim()
    index[a], index[b] = slice(None), slice(None)
    plane = p[tuple(index)]
    expected = torch.arange(channels, device=p.device).view(p.shape[a], p.shape[b])
    return (a, b) if torch.equal(plane, expected) else None


def _split_val(g, v: Val, p: torch.Tensor, split: tuple[int, int]) -> Val:
    """Channel ``j`` of every block is coupled (the blocks keep equal sizes when pruned); the
    output carries the channels on the per-block dim ``b``."""
    a, b = split
    blocks, size = p.shape[a], p.shape[b]
    for k in range(1, blocks):
        g.union_lists(v.labels[:size], v.labels[k * size:(k + 1) * size])
    zero = [all(v.zero[k * size + j] for k in range(blocks)) for j in range(size)]
    return Val(b, v.labels[:size], zero)


def _equal_blocks(indices: list[list[int] | None], channels: int) -> list[list[int]] | None:
    """Outputs that are equal contiguous blocks covering all channels (chunk/split), or None."""
    if len(indices) < 2 or any(i is None for i in indices):
        return None
    size = len(indices[0])
    expected = [list(range(k * size, (k + 1) * size)) for k in range(len(indices))]
    return indices if size * len(indices) == channels and indices == expected else None


def _size_independent(idx: list[int], channels: int) -> bool:
    """Does the op select channels in a way that adapts to a smaller channel count?

    True for the identity, repetition of each channel (flatten, repeat_interleave), tiling of
    all channels (repeat, tile) and reversal (flip); False for slices, index lists, uneven
    splits, whose positions are written in the code.
    """
    full = list(range(channels))
    if sorted(set(idx)) != full:
        return False
    if all(a <= b for a, b in zip(idx, idx[1:])) or idx == full[::-1]:
        return True
    return len(idx) % channels == 0 and idx == full * (len(idx) // channels)


@rule("cat", "concat", "concatenate", "stack")
def _cat(tr, func, args, kwargs, out) -> None:
    g = tr.g
    tensors = list(_arg(args, kwargs, 0, "tensors"))
    result = next(iter_tensors(out))
    stack = func_name_of(func) == "stack"
    dim = _arg(args, kwargs, 1, "dim", 0) % (tensors[0].dim() + (1 if stack else 0))
    cdims = {tr.val(t).cdim for t in tensors if tr.labeled(t)}
    if not stack and cdims == {dim}:
        labels, zero = [], []
        for t in tensors:
            lab, z = g.along(tr.val(t), t, dim)
            labels += lab
            zero += z
        return tr.set(result, Val(dim, labels, zero))
    if len(cdims) == 1:
        cd = cdims.pop()
        ref, zero = None, None
        for t in tensors:
            if not tr.labeled(t):
                if t.shape[cd] > 1:
                    g.fix([label for u in tensors if tr.labeled(u) for label in tr.val(u).labels], "cat with constant")
                continue
            v = tr.val(t)
            if ref is None:
                ref, zero = v.labels, list(v.zero)
            else:
                g.union_lists(ref, v.labels)
                zero = [a and b for a, b in zip(zero, v.zero)]
        out_cd = cd + 1 if stack and dim <= cd else cd
        if any(not tr.labeled(t) for t in tensors):
            zero = [False] * len(ref)
        return tr.set(result, Val(out_cd, ref, zero))
    for t in tensors:
        if tr.labeled(t):
            g.fix(tr.val(t).labels, "concatenated along mixed channel dims")
    tr.set_untracked(out, False)


@rule("pad")
def _pad(tr, func, args, kwargs, out) -> None:
    x = _first_tensor(args, kwargs)
    v = tr.val(x)
    pads = list(_arg(args, kwargs, 1, "pad"))
    mode = _arg(args, kwargs, 2, "mode", "constant")
    value = _arg(args, kwargs, 3, "value", None) or 0.0
    if len(pads) // 2 > x.dim() - 1 - v.cdim:
        tr.g.fix(v.labels, "padding of the channel dim")
        return tr.set_untracked(out, False)
    keeps = mode != "constant" or value == 0
    tr.set(out, Val(v.cdim, v.labels, [z and keeps for z in v.zero]))


def pixel_shuffle_val(tr, v: Val, x: torch.Tensor, factor: int, inverse: bool) -> Val:
    """Channel map of PixelShuffle (``r*r`` input channels -> one) and PixelUnshuffle."""
    g = tr.g
    if v.cdim != x.dim() - 3:
        g.fix(v.labels, "pixel shuffle of a non-NCHW channel dim")
        return Val(const=False)
    rr = factor * factor
    if inverse:
        return Val(v.cdim, [label for label in v.labels for _ in range(rr)], [z for z in v.zero for _ in range(rr)])
    labels, zero = [], []
    for c in range(len(v.labels) // rr):
        block = v.labels[c * rr : (c + 1) * rr]
        for e in block[1:]:
            g.union(block[0], e)
        labels.append(block[0])
        zero.append(all(v.zero[c * rr : (c + 1) * rr]))
    return Val(v.cdim, labels, zero)


@rule("pixel_shuffle", "pixel_unshuffle")
def _pixel_shuffle(tr, func, args, kwargs, out) -> None:
    x = _first_tensor(args, kwargs)
    factor = _arg(args, kwargs, 1, "upscale_factor", kwargs.get("downscale_factor"))
    inverse = func_name_of(func) == "pixel_unshuffle"
    tr.set(out, pixel_shuffle_val(tr, tr.val(x), x, int(factor), inverse))


