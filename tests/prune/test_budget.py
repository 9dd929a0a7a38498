"""The global MAC budget: gd hits its target, compaction gives the same MACs and outputs."""
from __future__ import annotations

import pytest
import torch

import lwdvc_kernels
from lwdvc.models import build
from lwdvc.prune import PruneConfigError, Pruner, finalize
from lwdvc.prune.finalize import module_macs
from lwdvc_kernels.compaction import rounded_count
from lwdvc_kernels.masking import has_masks

from .training import finetune


@pytest.mark.parametrize("target", [0.5, 0.65])
def test_gd_reaches_target_and_compacts_to_it(target):
    pruner, history, _ = finetune("gd", target, steps=60)
    final = history[-1]
    assert abs(final["mac_reduction"] - target) <= 0.02
    assert final["mac_reduction"] == pytest.approx(pruner.mac_reduction())
    # the ramp: the target grows from 0 and is reached by the end of the ramp
    assert history[0]["target_now"] == 0.0 and history[0]["mac_reduction"] == 0.0
    assert history[15]["target_now"] == pytest.approx(target)
    assert final["beta"] < 0.01 < history[10]["beta"]
    compacted, report = finalize(pruner, return_report=True)
    assert not has_masks(compacted)
    counted = sum(module_macs(m, pruner.example_inputs[n]) for n, m in compacted.decoder_modules().items())
    assert counted == report["macs"]
    assert report["mac_reduction"] == pytest.approx(final["mac_reduction"], abs=1e-9)
    y = torch.randn(2, 8, 4, 4)
    with torch.no_grad():
        masked, small = pruner.model(y), compacted(y)
    assert torch.allclose(masked, small, rtol=1e-4, atol=1e-5)
    assert sum(p.numel() for p in compacted.parameters()) < sum(p.numel() for p in pruner.model.parameters())


def test_codec_decoder_masked_equals_compacted_at_target():
    torch.manual_seed(0)
    model = build("dcvc", width=0.25)
    pruner = Pruner.for_codec(model, frame_size=(64, 64), target_mac_reduction=0.65, total_steps=10,
                              ramp_steps=0)
    metrics = pruner.step()
    assert abs(metrics["mac_reduction"] - 0.65) <= 0.02
    assert metrics["mask_flips"] > 0
    compacted, report = finalize(pruner, return_report=True)  # verify=True compares every module
    assert report["mac_reduction"] == pytest.approx(metrics["mac_reduction"], abs=1e-9)
    examples = model.decoder_example_inputs(64, 64)
    for name, module in compacted.decoder_modules().items():
        with torch.no_grad():
            expected = pruner.model.get_submodule(name)(*examples[name])
            got = module(*examples[name])
        assert torch.allclose(expected, got, rtol=1e-4, atol=1e-4), name
    # encoder-only modules are untouched
    assert torch.equal(compacted.mvEncoder[0].weight, model.mvEncoder[0].weight)


def test_round_to_keeps_multiples():
    pruner, _, _ = finetune("gd", 0.5, steps=8)
    compacted = finalize(pruner, round_to=4)
    for module in compacted.decoder_modules().values():
        for layer in module.modules():
            if isinstance(layer, torch.nn.Conv2d) and layer.out_channels > 3:
                assert layer.out_channels % 4 == 0, layer


def test_masks_go_through_the_masked_weight_op(monkeypatch):
    pruner, _, _ = finetune("gd", 0.5, steps=4)
    calls = []
    real = torch.ops.lwdvc.masked_weight

    def spy(*args):
        calls.append(args[3])
        return real(*args)

    monkeypatch.setattr(lwdvc_kernels.ops.masked_weight.__globals__["torch"].ops.lwdvc, "masked_weight", spy,
                        raising=False)
    pruner.model(torch.randn(1, 8, 4, 4))
    assert len(calls) == len(pruner._params)


def test_update_every_and_state_dict_round_trip():
    pruner, history, _ = finetune("gd", 0.5, steps=12, update_every=4)
    assert all(h["mask_flips"] == 0 for i, h in enumerate(history) if i % 4)
    state = pruner.state_dict()
    other, _, _ = finetune("gd", 0.5, steps=1)
    other.load_state_dict(state)
    assert other.mac_reduction() == pytest.approx(pruner.mac_reduction())
    assert other.step_count == pruner.step_count


def test_rounding_aware_budget_reaches_the_target_after_rounding():
    torch.manual_seed(0)
    model = build("dcvc", width=0.25)
    pruner = Pruner.for_codec(model, frame_size=(64, 64), target_mac_reduction=0.65, total_steps=10,
                              ramp_steps=0, round_to=4)
    metrics = pruner.step()
    assert 0.65 <= metrics["mac_reduction"] <= 0.70
    counts = [int(m.sum()) for d in pruner.kept_masks().values() for m in d.values()]
    sizes = [g.size for g in pruner.groups]
    assert all(c % 4 == 0 or c == s for c, s in zip(counts, sizes))
    assert any(c < s for c, s in zip(counts, sizes))
    compacted, report = finalize(pruner, return_report=True)  # the pruner's round_to: nothing to restore
    assert report["round_to"] == 4
    assert report["mac_reduction"] == pytest.approx(metrics["mac_reduction"], abs=1e-9)


def test_rounding_keeps_back_the_last_pruned_channels():
    pruner = Pruner.for_codec(build("dcvc", width=0.25), frame_size=(64, 64), target_mac_reduction=0.5,
                              total_steps=10, ramp_steps=0)
    gi = max(range(len(pruner.groups)), key=lambda i: pruner.groups[i].size - pruner.groups[i].min_kept)
    g = pruner.groups[gi]
    free = g.free.nonzero().flatten().tolist()[: g.size - g.min_kept]
    order = [(gi, ch) for ch in free[:11]]  # prune 11 channels of one group, least valuable first
    kept, _ = pruner.budget.select(pruner.groups, order, target=1e-9, round_to=4)
    mask = kept[g.module][g.name]
    assert int(mask.sum()) % 4 == 0 or int(mask.sum()) == g.size
    kept_all, red = pruner.budget.select(pruner.groups, order, target=1.0, round_to=4)  # the whole order
    mask = kept_all[g.module][g.name]
    n_pruned = g.size - rounded_count(g.size - 11, g.size, 4)
    assert int((~mask).sum()) == n_pruned
    assert not mask[free[:n_pruned]].any() and mask[free[n_pruned:11]].all()  # the last ones come back
    with pytest.raises(ValueError, match="round_to"):
        pruner.budget.select(pruner.groups, order, target=0.1, round_to=0)


def test_keep_dense_modules_count_in_the_total_but_are_never_pruned():
    torch.manual_seed(0)
    model = build("dcvc", width=0.25)
    pruner = Pruner.for_codec(model, frame_size=(64, 64), target_mac_reduction=0.4, total_steps=10,
                              ramp_steps=0, keep_dense=["mvDecoder_part1", "mvDecoder_part2"])
    assert pruner.groups and all(not g.module.startswith("mvDecoder") for g in pruner.groups)
    assert not has_masks(model.mvDecoder_part1) and not has_masks(model.mvDecoder_part2)
    metrics = pruner.step()
    assert metrics["mac_reduction"] >= 0.4
    compacted, report = finalize(pruner, return_report=True)
    for name in ("mvDecoder_part1", "mvDecoder_part2"):
        dense, kept = report["modules"][name]
        assert kept == dense > 0  # counted in the total, left whole
    assert report["dense_macs"] == pruner.budget.dense_macs
    assert report["mac_reduction"] == pytest.approx(metrics["mac_reduction"], abs=1e-9)


def test_keep_dense_rejects_names_outside_the_scope():
    with pytest.raises(PruneConfigError, match="mvDecoder_part3"):
        Pruner.for_codec(build("dcvc", width=0.25), frame_size=(64, 64), keep_dense=["mvDecoder_part3"])
    with pytest.raises(PruneConfigError, match="list of module names"):
        Pruner.for_codec(build("dcvc", width=0.25), frame_size=(64, 64), keep_dense="mvDecoder_part1")
