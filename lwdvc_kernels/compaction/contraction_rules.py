"""Channel rules for products of two tensors: ``matmul`` / ``@``, ``mm``, ``bmm`` and two-operand
``einsum`` (the maps of spatial self-attention and of channel attention written as products).

Both operands are described by subscripts, one letter per dim (matmul's batch, row, inner and
column dims become letters too). A channel dim is a letter:

* *carried* (in the output): the output carries the channels on that letter's dim; a channel is
  zero when pruned if it is zero in either operand (a zero row times anything is zero);
* *contracted* (in both operands, not in the output, e.g. the channels of ``q^T k``): the two
  operands' channels are coupled; a pruned channel must be zero in at least one of them, so that
  its products add nothing; an operand that is a parameter (or computed from parameters) is
  sliced along it; any other operand fixes the channels (it cannot be sliced);
* summed over by one operand alone: a reduction over channels, which fixes them.

At most one channel letter is carried into the output; others are fixed. MACs: the product of
every letter's size over the letters of both operands (letters that one operand sums away alone
excluded), as ``count_macs`` counts them.
"""
from __future__ import annotations

import math
import string

import torch

from lwdvc_kernels.compaction.function_rules import _stored_or_computed, func_name_of, rule
from lwdvc_kernels.compaction.graph import UnsupportedOpError, Val
from lwdvc_kernels.compaction.trace import iter_tensors


def _matmul_subscripts(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> tuple[str, str, str]:
    """Letters of ``a @ b`` with broadcast batch dims (a size-1 batch dim gets its own letter)."""
    letters = iter(string.ascii_letters)
    n, k, m = next(letters), next(letters), next(letters)
    batch = [next(letters) for _ in range(max(out.dim() - 2, 0) + 2)]
    sa = k if a.dim() == 1 else n + k
    sb = k if b.dim() == 1 else k + m
    so = ("" if a.dim() == 1 else n) + ("" if b.dim() == 1 else m)
    nb = max(out.dim() - len(so), 0)
    out_batch = batch[:nb]
    so = "".join(out_batch) + so

    def with_batch(t, core):
        extra = t.dim() - len(core)
        own = []
        for i in range(extra):
            j = nb - extra + i
            size_here, size_out = t.shape[i], out.shape[j]
            own.append(out_batch[j] if size_here == size_out else next(letters))
        return "".join(own) + core

    return with_batch(a, sa), with_batch(b, sb), so


def _einsum_subscripts(equation: str, operands: list[torch.Tensor]) -> tuple[list[str], str]:
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    parts = inputs.split(",")
    if "..." in equation:
        used = set(equation) - {".", ",", "-", ">"}
        free = [c for c in string.ascii_letters if c not in used]
        width = max(t.dim() - len(p.replace("...", "")) for p, t in zip(parts, operands))
        ell = "".join(free[:width])
        parts = [p.replace("...", ell[width - (t.dim() - len(p.replace("...", ""))):])
                 for p, t in zip(parts, operands)]
        output = output.replace("...", ell) if output else None
    if not arrow:
        letters = "".join(parts)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    return parts, output


@rule("matmul", "mm", "bmm", "einsum")
def _contraction(tr, func, args, kwargs, out) -> None:
    name = func_name_of(func)
    result = next(iter_tensors(out))
    if name == "einsum":
        equation = args[0]
        operands = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])
        if len(operands) != 2:
            raise UnsupportedOpError(f"{tr.g.node}: einsum with {len(operands)} operands reads channel-carrying "
                                     "tensors (only two-operand einsum is followed)")
        subs, out_subs = _einsum_subscripts(equation, operands)
    else:
        operands = [args[0], args[1]]
        sa, sb, out_subs = _matmul_subscripts(operands[0], operands[1], result)
        subs = [sa, sb]
    tr.set(result, _product(tr, operands, subs, out_subs, result))


def _product(tr, operands: list[torch.Tensor], subs: list[str], out_subs: str, out: torch.Tensor) -> Val:
    g = tr.g
    sizes: dict[str, int] = {}
    for t, s in zip(operands, subs):
        for letter, size in zip(s, t.shape):
            sizes[letter] = max(sizes.get(letter, 1), size)
    channel_letters: dict[str, list[int]] = {}
    carried: tuple[str, list[int], list[bool]] | None = None
    for i, (t, s) in enumerate(zip(operands, subs)):
        v = tr.val(t)
        if v is None or v.cdim is None:
            continue
        letter = s[v.cdim]
        j, other = 1 - i, operands[1 - i]
        other_val = tr.val(other)
        other_has = letter in subs[j] and other.shape[subs[j].index(letter)] == t.shape[v.cdim]
        if letter in out_subs:
            if other_has and other_val is not None and other_val.cdim is not None and subs[j][other_val.cdim] == letter:
                if i == 1:
                    continue  # both carry it: coupled once, below
                g.union_lists(v.labels, other_val.labels)
                zero = [a or b for a, b in zip(v.zero, other_val.zero)]
            else:
                zero = list(v.zero)
                if other_has and not _slice_with(tr, other, subs[j].index(letter), v.labels, "passive"):
                    g.fix(v.labels, "matrix product with an operand computed in forward along the channels")
            if carried is None:
                carried = (letter, v.labels, zero)
            else:
                g.fix(v.labels, "matrix product whose output would carry two channel dims")
            channel_letters.setdefault(letter, v.labels)
        elif other_has:
            if other_val is not None and other_val.cdim is not None and subs[j][other_val.cdim] == letter:
                if i == 1:
                    continue
                g.union_lists(v.labels, other_val.labels)
                ok = [a or b for a, b in zip(v.zero, other_val.zero)]
            else:
                ok = list(v.zero)
                if not _slice_with(tr, other, subs[j].index(letter), v.labels, "consumer"):
                    g.fix(v.labels, "matrix product contracting channels with an operand computed in forward")
            g.require_zero(v.labels, ok, "matrix product")
            channel_letters.setdefault(letter, v.labels)
        else:
            g.fix(v.labels, "product that sums over channels")
    summed_alone = {c for c in sizes if c not in out_subs and sum(c in s for s in subs) == 1}
    scale = math.prod(size for c, size in sizes.items() if c not in channel_letters and c not in summed_alone)
    g.term(scale, [labels for c, labels in channel_letters.items() if c not in summed_alone])
    if carried is None:
        return Val(const=False)
    letter, labels, zero = carried
    return Val(out_subs.index(letter), labels, zero)


def _slice_with(tr, t: torch.Tensor, dim: int, labels: list[int], role: str) -> bool:
    """Record a parameter operand (or one computed from parameters) as sliced with the channels;
    False when ``t`` is neither."""
    key = _stored_or_computed(tr, t, tr.val(t))
    if key is None:
        return False
    tr.g.record(key[0], key[1], dim, role, labels)
    return True
