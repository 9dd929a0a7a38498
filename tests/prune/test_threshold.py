"""``selection="threshold"``: learnable per-group thresholds with the sigmoid sparsity proxy."""
from __future__ import annotations

import argparse
import copy
import math

import pytest
import torch

from lwdvc.errors import ConfigError
from lwdvc.prune import PruneConfigError, Pruner, finalize
from lwdvc.prune.threshold import protected_channels, standardise_per_group
from lwdvc_kernels.masking import detach_masks, has_masks

from .models import latents, make_decoder
from .training import finetune

ALL_MODES = ["ste", "mask", "gd", "wd"]


def _pruner(mode: str = "gd", seed: int = 3, **kwargs) -> Pruner:
    kwargs = {"target_mac_reduction": 0.5, "total_steps": 10, "ramp_steps": 0, **kwargs}
    return Pruner.for_codec(make_decoder(seed=seed), frame_size=(32, 32), mode=mode, selection="threshold",
                            **kwargs)


def _set_thresholds(pruner: Pruner, value: float) -> None:
    with torch.no_grad():
        for t in pruner.parameters():
            t.fill_(value)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_masks_follow_the_thresholds(mode):
    pruner = _pruner(mode)
    assert len(pruner.parameters()) == len(pruner.groups) > 0
    assert all(t.requires_grad and t.dim() == 0 for t in pruner.parameters())
    _set_thresholds(pruner, -10.0)  # below every standardised score: nothing pruned
    assert pruner.step()["mac_reduction"] == 0.0
    _set_thresholds(pruner, 0.0)
    metrics = pruner.step()
    pruned_any = False
    for g, scorer, t in zip(pruner.groups, pruner._scorers, pruner.parameters()):
        s = standardise_per_group(scorer.norms())
        expected = (s > float(t.detach())) | protected_channels(g, s)
        assert torch.equal(g.mask > 0.5, expected), g.key
        pruned_any |= bool((~expected).any())
    assert pruned_any
    assert 0.0 < metrics["mac_reduction"] == pytest.approx(pruner.mac_reduction())
    assert metrics["threshold/" + pruner.groups[0].key] == 0.0
    # an explicit update with another target keeps following the thresholds (no top-k)
    assert pruner.update_masks(0.9) == pytest.approx(metrics["mac_reduction"])


@pytest.mark.parametrize("mode", ALL_MODES)
def test_high_thresholds_never_empty_a_group_and_overshoot_is_reported(mode):
    pruner = _pruner(mode, target_mac_reduction=0.3, round_to=4)
    _set_thresholds(pruner, 100.0)
    metrics = pruner.step()
    for g in pruner.groups:
        kept = g.mask > 0.5
        assert int(kept.sum()) >= g.min_kept >= 1
        assert bool(kept[g.fixed].all())
        assert int(kept.sum()) % 4 == 0 or int(kept.sum()) == g.size
        for units, keep in g.layers:
            assert int(kept[units].sum()) >= keep
    # the masks' reduction is reported as is: far beyond the target, not corrected
    assert metrics["mac_reduction"] > metrics["target_now"] + 0.2
    assert metrics["mac_reduction"] == pytest.approx(pruner.mac_reduction())
    assert metrics["proxy_mac_reduction"] > metrics["target_now"]


@pytest.mark.parametrize("mode", ALL_MODES)
def test_thresholds_get_the_proxy_gradient(mode):
    pruner = _pruner(mode, threshold_lambda=2.0, threshold_tau=0.5)
    pruner.step()
    loss = pruner.loss()
    assert loss.requires_grad
    loss.backward()
    # the proxy sits below the target (initial thresholds keep nearly everything): every
    # threshold is pushed up, by exactly d/dt of lambda2 * (proxy - target)^2
    proxy = 0.0
    terms = []
    for g, scorer, t in zip(pruner.groups, pruner._scorers, pruner.parameters()):
        s = standardise_per_group(scorer.norms()).double()
        soft = torch.where(g.fixed, torch.ones_like(s), torch.sigmoid((s - float(t.detach())) / 0.5))
        weight = g.cost * g.size / pruner.budget.dense_macs
        proxy += weight * (1 - float(soft.mean()))
        dsoft = torch.where(g.fixed, torch.zeros_like(s), soft * (1 - soft) / 0.5)
        terms.append(weight * float(dsoft.mean()))
    assert proxy == pytest.approx(pruner.metrics()["proxy_mac_reduction"], rel=1e-5)
    assert float(loss.detach()) == pytest.approx(2.0 * (proxy - 0.5) ** 2, rel=1e-5)
    for t, term in zip(pruner.parameters(), terms):
        assert float(t.grad) < 0
        assert float(t.grad) == pytest.approx(2.0 * 2.0 * (proxy - 0.5) * term, rel=1e-4)


def _weight_grads(mode: str, weight_decay: float = 0.05):
    """Raw-weight gradients of the masked model (plus pruner.loss()) and the dense gradient."""
    model = make_decoder(seed=3)
    pruner = Pruner.for_codec(model, frame_size=(32, 32), target_mac_reduction=0.5, mode=mode,
                              selection="threshold", total_steps=10, ramp_steps=0, weight_decay=weight_decay)
    _set_thresholds(pruner, 0.0)
    for _ in range(4):  # gd: beta strictly between 0 and 1
        pruner.step()
    y = latents(2, 4, seed=1)
    probe = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    dense = copy.deepcopy(model)
    detach_masks(dense, apply=True)
    (dense(y) * probe).sum().backward()
    (model(y) * probe).sum().add(pruner.loss()).backward()
    layer = model.refiner.head
    mask = layer.parametrizations.weight[0].effective_mask().view(-1, 1, 1, 1)
    assert 0 < float(mask.sum()) < mask.numel(), "the probed layer must be partly pruned"
    got = layer.parametrizations.weight.original.grad
    w = layer.parametrizations.weight.original.detach()
    return pruner, got, dense.refiner.head.weight.grad, mask, w


@pytest.mark.parametrize("mode", ALL_MODES)
def test_gradient_modes_apply_to_the_masked_weights_as_in_budget_selection(mode):
    pruner, got, g, mask, w = _weight_grads(mode)
    beta = {"ste": 1.0, "mask": 0.0, "wd": 1.0}.get(mode, pruner.beta_schedule(3))
    assert pruner.beta == pytest.approx(beta)
    expected = g * (mask + beta * (1 - mask))
    if mode == "wd":
        expected = expected + 0.05 * (1 - mask) * w
    torch.testing.assert_close(got, expected)  # the proxy term sends no gradient to the weights
    assert all(t.grad is not None and float(t.grad) != 0.0 for t in pruner.parameters())


@pytest.mark.parametrize("mode", ALL_MODES)
def test_proxy_loss_moves_the_sparsity_towards_the_target(mode):
    pruner, history, _ = finetune(mode, 0.5, steps=60, selection="threshold", threshold_lr=0.1)
    assert history[0]["mac_reduction"] == 0.0 and history[0]["proxy_mac_reduction"] < 0.05
    final = history[-1]
    assert abs(final["proxy_mac_reduction"] - 0.5) <= 0.06
    assert 0.3 <= final["mac_reduction"] <= 0.6
    assert final["mac_reduction"] == pytest.approx(pruner.mac_reduction())
    assert all(float(t.detach()) > -3.0 for t in pruner.parameters())  # thresholds rose from their start
    compacted, report = finalize(pruner, return_report=True)  # verify=True: exact compaction
    assert not has_masks(compacted)
    assert report["mac_reduction"] == pytest.approx(final["mac_reduction"], abs=1e-9)
    y = torch.randn(2, 8, 4, 4)
    with torch.no_grad():
        assert torch.allclose(pruner.model(y), compacted(y), rtol=1e-4, atol=1e-5)


def test_state_dict_restores_the_thresholds():
    pruner = _pruner()
    _set_thresholds(pruner, 0.25)
    pruner.step()
    state = pruner.state_dict()
    other = _pruner()
    other.load_state_dict(state)
    assert [float(t.detach()) for t in other.parameters()] == [0.25] * len(pruner.groups)
    assert other.mac_reduction() == pytest.approx(pruner.mac_reduction())
    budget = Pruner.for_codec(make_decoder(seed=3), frame_size=(32, 32), target_mac_reduction=0.5)
    with pytest.raises(ValueError, match="thresholds"):
        budget.load_state_dict(state)


def test_budget_selection_has_no_thresholds():
    pruner = Pruner.for_codec(make_decoder(), frame_size=(32, 32), target_mac_reduction=0.5, ramp_steps=0)
    assert pruner.selection == "budget" and pruner.parameters() == []
    metrics = pruner.step()
    assert "proxy_mac_reduction" not in metrics and not any(k.startswith("threshold/") for k in metrics)


@pytest.mark.parametrize("kwargs, name", [
    ({"selection": "soft"}, "selection"),
    ({"selection": "threshold", "threshold_tau": 0.0}, "threshold_tau"),
    ({"selection": "threshold", "threshold_lambda": -1.0}, "threshold_lambda"),
    ({"selection": "threshold", "threshold_init": math.nan}, "threshold_init"),
    ({"selection": "threshold", "threshold_tau": "0.4"}, "threshold_tau"),
])
def test_bad_threshold_options_are_refused(kwargs, name):
    model = make_decoder()
    with pytest.raises(PruneConfigError, match=name):
        Pruner.for_codec(model, frame_size=(32, 32), **kwargs)
    assert not has_masks(model)


def test_prune_config_and_cli_options():
    from lwdvc.commands.prune import add_prune_options, prune_config
    from lwdvc.train.finetune import PruneConfig

    with pytest.raises(ConfigError, match="selection"):
        PruneConfig(selection="topk")
    with pytest.raises(ConfigError, match="threshold_lr"):
        PruneConfig(threshold_lr=0.0)
    parser = argparse.ArgumentParser()
    add_prune_options(parser)
    assert prune_config(parser.parse_args([]), "gd", False).selection == "budget"
    config = prune_config(parser.parse_args(["--selection", "threshold", "--threshold-lr", "0.02"]), "ste", False)
    assert (config.selection, config.threshold_lr, config.mode) == ("threshold", 0.02, "ste")
    assert '"selection": "threshold"' in config.to_json()
    with pytest.raises(SystemExit):
        parser.parse_args(["--selection", "topk"])
