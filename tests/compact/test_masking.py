"""The mask contract: shared group masks on every producer, masked semantics, read-back, detach."""
from __future__ import annotations

import copy

import torch

from lwdvc_kernels.compaction import channel_groups
from lwdvc_kernels.compaction.slicing import zero_pruned
from lwdvc_kernels.masking import MaskedWeight, attach_masks, detach_masks, has_masks, masks_of, set_beta

from .models import HybridDecoder, hybrid_inputs, randomize_


def _setup():
    model, x = randomize_(HybridDecoder()), hybrid_inputs()
    return model, x, channel_groups(model, x)


def test_one_shared_mask_per_group_on_every_producer():
    model, x, analysis = _setup()
    masks = attach_masks(model, analysis)
    assert set(masks) == {g.name for g in analysis.prunable}
    for g in analysis.prunable:
        for m in g.producers():
            owner = model.get_submodule(m.module) if m.module else model
            (param,) = owner.parametrizations[m.tensor]
            assert isinstance(param, MaskedWeight) and param.mask is masks[g.name]
            assert param.group == g.name and param.dim == m.dim
    # the conv before the PixelShuffle writes 4 channels per group channel: it needs an index
    (sub,) = model.up2.conv.parametrizations["weight"]
    assert sub.index is not None and sub.index.tolist()[:8] == [0, 0, 0, 0, 1, 1, 1, 1]


def test_masked_forward_equals_zeroed_reference_and_read_back():
    model, x, analysis = _setup()
    reference = copy.deepcopy(model)
    masks = attach_masks(model, analysis)
    gen = torch.Generator().manual_seed(0)
    keep = {}
    for name, mask in masks.items():
        k = torch.rand(mask.shape, generator=gen) > 0.5
        k[0] = True
        mask.copy_(k.float())  # the pruner updates masks in place
        keep[name] = k
    full = analysis.keep_masks(keep)
    zero_pruned(reference, analysis, full)
    with torch.no_grad():
        torch.testing.assert_close(model(*x), reference(*x), rtol=1e-5, atol=1e-6)
    read = masks_of(model)
    assert all(torch.equal(read[n], keep[n]) for n in keep)
    detach_masks(model)
    assert not has_masks(model)
    assert model.head.weight.abs().sum() > 0 and not hasattr(model.head, "parametrizations")


def test_gradient_decay_beta_reaches_pruned_weights():
    model, x, analysis = _setup()
    masks = attach_masks(model, analysis, beta=0.0)
    masks["head"].zero_()
    masks["head"][0] = 1.0
    set_beta(model, 0.25)
    model(*x).square().sum().backward()
    original = model.head.parametrizations.weight.original
    assert original.grad is not None
    assert float(original.grad[1:].abs().sum()) > 0  # beta > 0: pruned weights still learn
    set_beta(model, 0.0)
    original.grad = None
    model(*x).square().sum().backward()
    assert float(original.grad[1:].abs().sum()) == 0.0
