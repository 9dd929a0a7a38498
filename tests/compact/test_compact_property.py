"""Property: for any decoder built from the supported layers and any random masks, the compacted
model computes exactly what the masked model computes, in eval and in train mode, and the input
model never changes (weights, statistics, buffers, train/eval flags)."""
from __future__ import annotations

import copy

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lwdvc_kernels.compaction import channel_groups, compact
from lwdvc_kernels.compaction.slicing import zero_pruned

from .helpers import masks_for_reduction
from .models import randomize_
from .random_decoders import BLOCKS, UPSAMPLING, RandomDecoder


@st.composite
def decoders(draw):
    blocks = draw(st.lists(st.sampled_from(BLOCKS), min_size=2, max_size=7).filter(
        lambda b: sum(x in UPSAMPLING for x in b) <= 2))
    widths = draw(st.lists(st.integers(2, 8).map(lambda w: 2 * w), min_size=len(blocks), max_size=len(blocks)))
    return blocks, widths


def _state(model: torch.nn.Module) -> tuple[dict, dict]:
    return ({k: v.clone() for k, v in model.state_dict().items()},
            {name: m.training for name, m in model.named_modules()})


def _unchanged(model: torch.nn.Module, before: tuple[dict, dict]) -> bool:
    tensors, flags = before
    now = model.state_dict()
    return (now.keys() == tensors.keys() and all(torch.equal(tensors[k], v) for k, v in now.items())
            and flags == {name: m.training for name, m in model.named_modules()})


@settings(max_examples=40, deadline=None)
@given(spec=decoders(), seed=st.integers(0, 2**16), reduction=st.sampled_from([0.3, 0.5, 0.65, 0.8]),
       train_mode=st.booleans())
def test_compacted_equals_masked_and_the_input_model_is_untouched(spec, seed, reduction, train_mode):
    blocks, widths = spec
    torch.manual_seed(seed)
    model = randomize_(RandomDecoder(blocks, widths), seed).train(train_mode)
    x = (torch.randn(2, 6, 8, 8, generator=torch.Generator().manual_seed(seed)),)
    before = _state(model)
    analysis = channel_groups(model, x)
    assert _unchanged(model, before)
    masks = masks_for_reduction(analysis, reduction, seed)
    small, keep = compact(model, x, masks=masks, return_masks=True, memory_format=torch.contiguous_format)
    assert _unchanged(model, before), f"compact changed the input model ({blocks})"
    assert analysis.macs(keep) <= analysis.macs({k: torch.ones_like(v) for k, v in keep.items()})
    # an independent check on fresh inputs, in eval mode (batch statistics would differ per batch)
    masked = copy.deepcopy(model).eval()
    zero_pruned(masked, analysis, keep)
    small = small.eval()
    x2 = torch.randn_like(x[0]) * 2
    with torch.no_grad():
        ref, got = masked(x2), small(x2)
    assert ref.shape == got.shape
    assert float((ref - got).norm()) <= 1e-4 * float(ref.norm()) + 1e-6, blocks
    if not all(bool(k.all()) for k in keep.values()):
        assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())


def test_a_concatenated_branch_whose_channels_are_all_pruned_keeps_one():
    """The branch conv of ``cat(x, relu(conv(x)))`` shares a group with ``x`` (a depthwise conv
    follows); pruning all of its channels would leave a conv with zero outputs."""
    torch.manual_seed(78)
    model = randomize_(RandomDecoder(["concat", "dw"], [4, 4]), 78)
    x = (torch.randn(2, 6, 8, 8),)
    analysis = channel_groups(model, x)
    masks = {"head": torch.tensor([0, 1, 1, 1, 1, 1, 1, 1, 0, 0], dtype=torch.bool)}  # channels 8, 9: the branch
    small, keep = compact(model, x, masks=masks, return_masks=True)
    assert keep["head"][:8].tolist() == masks["head"][:8].tolist()  # only the branch gets a channel back
    assert int(keep["head"][8:].sum()) == 1 and small.body[0].conv.out_channels == 1
    masked = copy.deepcopy(model)
    zero_pruned(masked, analysis, keep)
    with torch.no_grad():
        assert torch.allclose(masked(*x), small(*x), rtol=1e-5, atol=1e-6)
