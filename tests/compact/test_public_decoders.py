"""compact() on public decoder architectures (tests/compact/public_decoders.py) out of the box:
exact at random masks, and the MACs of the compacted model equal the analysis' account."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from lwdvc_kernels import channel_groups, compact, count_macs
from lwdvc_kernels.compaction import CompactionMismatch
from tests.compact.helpers import masks_for_reduction, randomized
from tests.compact.public_decoders import DECODERS, NonLocalAttention


@pytest.mark.parametrize("name", sorted(DECODERS))
@pytest.mark.parametrize("reduction", [0.3, 0.6])
def test_public_decoder_compacts_exactly(name, reduction):
    build, shape = DECODERS[name]
    model = randomized(build(), seed=len(name))
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    analysis = channel_groups(model, x)
    assert analysis.prunable, f"{name}: nothing prunable"
    masks = masks_for_reduction(analysis, reduction, seed=int(reduction * 10))
    small, kept = compact(model, x, masks=masks, verify=True, return_masks=True)
    dense_macs = count_macs(model, x)
    assert analysis.dense_macs == dense_macs
    small_macs = count_macs(small, x)
    assert small_macs == analysis.macs(kept)
    assert small_macs <= (1 - reduction) * dense_macs + 0.02 * dense_macs
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())


def test_group_norm_blocks_are_kept_or_removed_whole():
    build, shape = DECODERS["latent_image_decoder"]
    model = randomized(build(), seed=3)
    analysis = channel_groups(model, torch.randn(*shape))
    group = analysis["conv_in"]  # 32 channels under GroupNorm(4, 32): 4 blocks of 8
    assert group.size == 4
    keep = torch.tensor([True, False, True, False])
    small = compact(model, torch.randn(*shape), masks={"conv_in": keep}, verify=True)
    assert small.attention_norm.num_channels == 16 and small.attention_norm.num_groups == 2
    assert small.conv_in.out_channels == 16


def test_attention_couples_query_and_key_channels():
    build, shape = DECODERS["nonlocal_attention_block"]
    analysis = channel_groups(randomized(build(), seed=0), torch.randn(*shape))
    by_producer = {m.module: g.name for g in analysis.groups for m in g.producers()}
    assert by_producer["1.q"] == by_producer["1.k"] != by_producer["1.v"]
    assert analysis[by_producer["1.q"]].prunable and analysis[by_producer["1.v"]].prunable


def test_a_channel_count_read_in_forward_is_caught_by_the_verification():
    """Python numbers computed from shapes are invisible to the analysis: an attention scaled by
    ``q.shape[1] ** -0.5`` changes when channels are pruned, and ``verify`` refuses the result."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), NonLocalAttention(16, 8, runtime_scale=True),
                          nn.Conv2d(16, 3, 3, padding=1)).eval()
    x = torch.randn(1, 3, 5, 6)
    analysis = channel_groups(model, x)
    query = next(g for g in analysis.groups if any(m.module == "1.q" for m in g.producers()))
    keep = torch.ones(query.size, dtype=torch.bool)
    keep[:3] = False
    with pytest.raises(CompactionMismatch):
        compact(model, x, masks={query.name: keep}, verify=True)


def test_multi_head_attention_prunes_the_same_channels_of_every_head():
    build, shape = DECODERS["multihead_attention_block"]
    model = randomized(build(), seed=2)
    analysis = channel_groups(model, torch.randn(*shape))
    by_producer = {m.module: g.name for g in analysis.groups for m in g.producers()}
    query = analysis[by_producer["1.qkv.0"]]
    assert by_producer["1.qkv.0"] == by_producer["1.qkv.1"] and query.size == 8  # 16 channels, 2 heads
    keep = torch.ones(8, dtype=torch.bool)
    keep[[1, 6]] = False
    small = compact(model, torch.randn(*shape), masks={query.name: keep}, verify=True)
    assert small[1].qkv[0].out_channels == 12  # channels 1 and 6 of both heads
