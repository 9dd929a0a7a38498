"""Gradient behaviour of every mode, and STE's mask oscillation against gradient decay."""
from __future__ import annotations

import copy

import pytest
import torch

from lwdvc.prune import Pruner
from lwdvc_kernels.masking import detach_masks

from .models import latents, make_decoder
from .training import finetune


def _grads(mode: str, weight_decay: float = 0.05):
    """Masked-model gradients of the raw weights and the dense gradient at the masked weights."""
    model = make_decoder(seed=3)
    pruner = Pruner.for_codec(model, frame_size=(32, 32), target_mac_reduction=0.6, mode=mode,
                              total_steps=10, ramp_steps=0, weight_decay=weight_decay)
    for _ in range(4):  # gd: beta strictly between 0 and 1
        pruner.step()
    y = latents(2, 4, seed=1)
    probe = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    dense = copy.deepcopy(model)
    detach_masks(dense, apply=True)  # same forward: pruned producer channels baked to zero
    (dense(y) * probe).sum().backward()
    (model(y) * probe).sum().add(pruner.loss()).backward()
    layer = model.refiner.head  # a producer group of the full-resolution module
    param = layer.parametrizations.weight[0]
    mask = param.effective_mask().view(-1, 1, 1, 1)
    got = layer.parametrizations.weight.original.grad
    g = dense.refiner.head.weight.grad
    w = layer.parametrizations.weight.original.detach()
    assert 0 < float(mask.sum()) < mask.numel(), "the probed layer must be partly pruned"
    return pruner, got, g, mask, w


def test_ste_passes_the_dense_gradient():
    pruner, got, g, mask, _ = _grads("ste")
    assert pruner.beta == 1.0
    torch.testing.assert_close(got, g)


def test_mask_blocks_pruned_gradients():
    pruner, got, g, mask, _ = _grads("mask")
    assert pruner.beta == 0.0
    torch.testing.assert_close(got, g * mask)
    assert float(got[mask.flatten() == 0].abs().sum()) == 0.0


def test_gd_decays_pruned_gradients_by_beta():
    pruner, got, g, mask, _ = _grads("gd")
    beta = pruner.beta
    assert 0.0 < beta < 1.0
    assert beta == pytest.approx(pruner.beta_schedule(3))
    torch.testing.assert_close(got, g * (mask + beta * (1 - mask)))


def test_wd_adds_decay_on_pruned_weights_only():
    pruner, got, g, mask, w = _grads("wd", weight_decay=0.05)
    torch.testing.assert_close(got, g + 0.05 * (1 - mask) * w)
    assert float(pruner.loss().detach()) > 0


def test_non_wd_modes_have_no_pruning_loss():
    pruner, *_ = _grads("gd")
    assert float(pruner.loss()) == 0.0


def test_ste_masks_oscillate_where_gd_settles():
    """Same settings, target 0.8: after the target is reached, STE keeps swapping channels
    (pruned weights follow gradients computed as if they were active, with no feedback), while
    gradient decay freezes the pruned weights as beta falls and the masks settle."""
    late = {"gd": 0, "ste": 0}
    for seed in (0, 1, 2):
        for mode in late:
            _, history, _ = finetune(mode, 0.8, steps=120, seed=seed)
            late[mode] += int(sum(h["mask_flips"] for h in history[60:]))
            assert abs(history[-1]["mac_reduction"] - 0.8) <= 0.02
    assert late["gd"] <= 2
    assert late["ste"] >= late["gd"] + 10


@pytest.mark.parametrize("mode", ["ste", "gd", "mask"])
def test_batched_masked_weights_give_the_per_weight_gradients(mode):
    model = make_decoder(seed=4)
    pruner = Pruner.for_codec(model, frame_size=(32, 32), target_mac_reduction=0.6, mode=mode,
                              total_steps=10, ramp_steps=0)
    for _ in range(4):
        pruner.step()
    assert len(pruner.batched) == len(pruner._params) > 0
    y = latents(2, 4, seed=1)
    probe = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    originals = [p for n, p in model.named_parameters() if n.endswith(".original")]
    (model(y) * probe).sum().backward()
    per_weight = [p.grad.clone() for p in originals]
    model.zero_grad(set_to_none=True)
    with pruner.batched:  # two forwards in one block share the precomputed masked weights
        loss = (model(y) * probe).sum() + (model(y) * probe).sum()
    (loss / 2).backward()
    for got, want in zip([p.grad for p in originals], per_weight):
        torch.testing.assert_close(got, want)
