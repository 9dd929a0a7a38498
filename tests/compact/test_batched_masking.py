"""batched_masked_weights: one masked_weights call per forward, same outputs and gradients."""
from __future__ import annotations

import copy

import pytest
import torch

from lwdvc_kernels.compaction import channel_groups
from lwdvc_kernels.masking import (
    BatchedMaskedWeights,
    attach_masks,
    batched_masked_weights,
    masked_weights,
    set_beta,
)

from .models import HybridDecoder, hybrid_inputs, randomize_


def _masked_model(beta: float = 0.3):
    """HybridDecoder with random masks (each group keeps and prunes channels) and ``beta``."""
    model, x = randomize_(HybridDecoder()), hybrid_inputs()
    masks = attach_masks(model, channel_groups(model, x))
    gen = torch.Generator().manual_seed(1)
    for mask in masks.values():
        keep = torch.rand(mask.shape, generator=gen) > 0.4
        keep[0], keep[-1] = True, False
        mask.copy_(keep.float())
    set_beta(model, beta)
    return model, x


def _originals(model):
    return [owner.parametrizations[name].original for _, owner, name, _ in masked_weights(model)]


def _forward_backward(model, x, batched: BatchedMaskedWeights | None, calls: int = 1):
    """Output of the last of ``calls`` forward passes and the gradients of every original."""
    for p in model.parameters():
        p.grad = None
    if batched is None:
        outs = [model(*x) for _ in range(calls)]
    else:
        with batched:
            outs = [model(*x) for _ in range(calls)]
    sum(out.square().sum() for out in outs).backward()  # backward after the block
    return outs[-1].detach(), [w.grad.clone() for w in _originals(model)]


@pytest.mark.parametrize("calls", [1, 2], ids=["one-pass", "weights-read-twice"])
def test_batched_forward_backward_equals_per_weight_path(calls):
    model, x = _masked_model()
    batched = BatchedMaskedWeights(model)
    assert len(batched) == len(list(masked_weights(model))) > 5
    want_out, want_grads = _forward_backward(model, x, None, calls)
    for _ in range(2):  # reusable: a second step recomputes from the current originals
        got_out, got_grads = _forward_backward(model, x, batched, calls)
        torch.testing.assert_close(got_out, want_out, rtol=1e-6, atol=1e-6)
        for got, want in zip(got_grads, want_grads):
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    # Pruned weights still learn through beta, and gradients reach every original.
    assert all(g.abs().sum() > 0 for g in got_grads)


def test_one_autograd_node_for_every_masked_tensor_inside_the_block():
    model, _ = _masked_model()
    pairs = [(owner, name) for _, owner, name, _ in masked_weights(model)]
    with batched_masked_weights(model):
        nodes = {getattr(owner, name).grad_fn for owner, name in pairs}
        assert len(nodes) == 1
        assert getattr(*pairs[0]) is getattr(*pairs[0])  # read twice: the same tensor
    after = {getattr(owner, name).grad_fn for owner, name in pairs}
    assert len(after) == len(pairs)  # per-weight path again


def test_block_follows_optimizer_steps_and_mask_updates():
    model, x = _masked_model()
    batched = BatchedMaskedWeights(model)
    with torch.no_grad():
        for w in _originals(model):
            w.mul_(1.5)
        for _, _, _, param in masked_weights(model):
            param.mask[1] = 0.0
    want = model(*x).detach()
    with batched:
        torch.testing.assert_close(model(*x), want, rtol=1e-6, atol=1e-6)


def test_nested_blocks_copies_and_distinct_betas():
    model, x = _masked_model()
    params = [p for _, _, _, p in masked_weights(model)]
    params[0].beta = 0.9  # a second (device, beta) batch
    want_out, want_grads = _forward_backward(model, x, None)
    outer = BatchedMaskedWeights(model)
    with outer:
        outer_entries = [p._batched for p in params]
        assert all(entry is not None for entry in outer_entries)
        with batched_masked_weights(model):
            assert all(p._batched is not entry for p, entry in zip(params, outer_entries))
            clone = copy.deepcopy(model)  # a copy never carries the block's tensors
        assert all(p._batched is entry for p, entry in zip(params, outer_entries))  # restored
    assert all(p._batched is None for p in params)
    assert all(p._batched is None for p in clone.modules() if hasattr(p, "_batched"))
    got_out, got_grads = _forward_backward(model, x, outer)
    torch.testing.assert_close(got_out, want_out, rtol=1e-6, atol=1e-6)
    for got, want in zip(got_grads, want_grads):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_failed_entry_leaves_the_per_weight_path():
    model, x = _masked_model()
    batched = BatchedMaskedWeights(model, backend="fast")
    with pytest.raises(ValueError, match="unknown backend 'fast'"):
        with batched:
            pass
    assert all(p._batched is None for _, _, _, p in masked_weights(model))
    model(*x)
