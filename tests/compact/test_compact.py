"""compact() on unseen hand-made decoders at random masks: exactness and MAC accounting."""
from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lwdvc_kernels
from lwdvc_kernels.compaction import CompactionMismatch, channel_groups, compact
from lwdvc_kernels.compaction.slicing import zero_pruned
from lwdvc_kernels.macs import count_macs

from .helpers import masks_for_reduction
from .models import HybridDecoder, WarpDecoder, hybrid_inputs, randomize_, warp_inputs

MODELS = {"hybrid": (HybridDecoder, hybrid_inputs), "warp": (WarpDecoder, warp_inputs)}


def _build(name: str, seed: int = 0):
    cls, inputs = MODELS[name]
    torch.manual_seed(seed)
    return randomize_(cls(), seed), inputs()


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("reduction", [0.30, 0.50, 0.65, 0.80])
def test_exact_and_macs_at_reduction(name, reduction):
    model, x = _build(name)
    analysis = channel_groups(model, x)
    assert analysis.dense_macs == count_macs(model, *x)
    masks = masks_for_reduction(analysis, reduction, seed=int(reduction * 100))
    assert analysis.macs(masks) <= (1 - reduction) * analysis.dense_macs
    before = copy.deepcopy(model.state_dict())
    small, keep = compact(model, x, masks=masks, return_masks=True)
    assert count_macs(small, *x) == analysis.macs(keep) == analysis.macs(masks)
    assert count_macs(small, *x) <= (1 - reduction) * count_macs(model, *x)
    # the input model is untouched, the small model has fewer parameters
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    # exactness against the masked model on fresh random inputs (beyond compact's own check)
    masked = copy.deepcopy(model)
    zero_pruned(masked, analysis, keep)
    x2 = tuple(torch.randn_like(t) for t in x)
    with torch.no_grad():
        ref, got = masked(*x2), small(*x2)
    assert ref.shape == got.shape
    assert float((ref - got).norm()) <= 1e-5 * float(ref.norm())


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), reduction=st.floats(0.2, 0.8), name=st.sampled_from(sorted(MODELS)))
def test_random_masks_any_seed(seed, reduction, name):
    model, x = _build(name, seed % 7)
    analysis = channel_groups(model, x)
    masks = masks_for_reduction(analysis, reduction, seed)
    small, keep = compact(model, x, masks=masks, return_masks=True)
    assert count_macs(small, *x) == analysis.macs(keep)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_to_8_restores_most_important(name):
    model, x = _build(name)
    analysis = channel_groups(model, x)
    masks = masks_for_reduction(analysis, 0.65, seed=3)
    small, keep = compact(model, x, masks=masks, round_to=8, return_masks=True)
    for g in analysis.groups:
        kept = int(keep[g.name].sum())
        assert kept == g.size or kept % 8 == 0, (g.name, kept, g.size)
        assert kept >= min(8, g.size)
        if g.name in masks:
            assert bool((keep[g.name] | ~masks[g.name]).all())  # only restores, never removes
    assert count_macs(small, *x) == analysis.macs(keep)
    assert analysis.macs(keep) >= analysis.macs(masks)


def test_round_to_picks_largest_norm_channels():
    model, x = _build("hybrid")
    analysis = channel_groups(model, x)
    group = analysis["head"]
    with torch.no_grad():
        model.head.weight[5].mul_(100.0)  # channel 5 becomes the most important
    mask = torch.zeros(group.size, dtype=torch.bool)
    mask[0] = True
    _, keep = compact(model, x, masks={"head": mask}, round_to=2, return_masks=True)
    assert keep["head"].nonzero().flatten().tolist() == [0, 5]


def test_from_attached_masks_and_public_alias():
    model, x = _build("hybrid")
    analysis = lwdvc_kernels.channel_groups(model, x)
    from lwdvc_kernels.masking import attach_masks, has_masks

    masked = copy.deepcopy(model)
    shared = attach_masks(masked, analysis)
    wanted = masks_for_reduction(analysis, 0.5, seed=1)
    for name, mask in wanted.items():
        shared[name].copy_(mask.float())
    small, keep = lwdvc_kernels.compact(masked, x, return_masks=True)
    assert has_masks(masked) and not has_masks(small)
    assert all(torch.equal(keep[n], wanted[n]) for n in wanted)
    with torch.no_grad():
        torch.testing.assert_close(small(*x), masked(*x), rtol=1e-5, atol=1e-6)


def test_verify_catches_a_wrong_compaction(monkeypatch):
    model, x = _build("hybrid")
    analysis = channel_groups(model, x)
    masks = masks_for_reduction(analysis, 0.5, seed=2)
    from lwdvc_kernels.compaction import compactor

    original = compactor.zero_pruned

    def broken(reference, an, keep):  # the reference forgets to mask one group
        original(reference, an, {**keep, "head": torch.ones_like(keep["head"])})

    monkeypatch.setattr(compactor, "zero_pruned", broken)
    with pytest.raises(CompactionMismatch, match="relative error"):
        compact(model, x, masks={"head": masks["head"]})


def test_bad_masks_are_rejected():
    model, x = _build("hybrid")
    analysis = channel_groups(model, x)
    with pytest.raises(ValueError, match="unknown channel group"):
        compact(model, x, masks={"nope": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="entries"):
        compact(model, x, masks={"head": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="not prunable"):
        compact(model, x, masks={"tail": torch.tensor([True, False, True])})
    with pytest.raises(ValueError, match="example_inputs"):
        compact(model)
    assert not analysis["tail"].prunable


def test_memory_format_of_the_compacted_model():
    model, x = _build("hybrid")
    masks = masks_for_reduction(channel_groups(model, x), 0.65, seed=2)
    nhwc = compact(model, x, masks=masks)
    nchw = compact(model, x, masks=masks, memory_format=torch.contiguous_format)
    four_d = [v for v in nhwc.state_dict().values() if v.dim() == 4]
    assert four_d and all(v.is_contiguous(memory_format=torch.channels_last) for v in four_d)
    assert any(not v.is_contiguous() for v in four_d)
    assert all(v.is_contiguous() for v in nchw.state_dict().values())
    assert all(v.is_contiguous() for v in model.state_dict().values())  # input model untouched
    with torch.no_grad():
        a, b = nhwc.eval()(*x), nchw.eval()(*x)
    for p, q in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="memory_format"):
        compact(model, x, masks=masks, memory_format=torch.preserve_format)


class _InPlaceInput(torch.nn.Module):
    """Changes its input in place before using it (as some decoders normalise their inputs)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Conv2d(3, 4, 1), torch.nn.Conv2d(4, 2, 1)

    def forward(self, x):
        x.mul_(2)
        return self.b(torch.relu(self.a(x)))


def test_verify_runs_each_model_on_its_own_copy_of_the_inputs():
    torch.manual_seed(0)
    model, x = _InPlaceInput(), torch.randn(1, 3, 4, 4)
    small = compact(model, x, masks={"a": torch.tensor([1, 0, 1, 1]).bool()})
    assert small.a.out_channels == 3


def test_optimize_verifies_on_its_own_copy_of_the_inputs():
    from lwdvc_kernels.optimization.verify import relative_error

    torch.manual_seed(0)
    model, x = _InPlaceInput().eval(), torch.randn(1, 3, 4, 4)
    before = x.clone()
    assert relative_error(model, copy.deepcopy(model), (x,)) == 0.0
    assert torch.equal(x, before)
