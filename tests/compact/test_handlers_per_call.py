"""A layer the engine does not know, described by a handler passed to one call (the worked
example of docs/ADDING_A_LAYER.md): analysis, exact compaction and MACs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lwdvc_kernels import channel_groups, compact, count_macs
from lwdvc_kernels.compaction import ModuleHandler, UnsupportedOpError, layer_rules
from lwdvc_kernels.compaction.module_rules import MODULE_RULES


class ChannelMix(nn.Module):
    """A 1x1 convolution written with ``torch.tensordot``: [N, C_in, H, W] -> [N, C_out, H, W]."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels = c_in, c_out
        self.weight = nn.Parameter(torch.randn(c_out, c_in) / c_in ** 0.5)
        self.bias = nn.Parameter(torch.randn(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensordot(self.weight, x, dims=([1], [1])).permute(1, 0, 2, 3) + self.bias.view(1, -1, 1, 1)


class ChannelMixHandler(ModuleHandler):
    """ChannelMix acts like a 1x1 convolution: weight [C_out, C_in] (no kernel dims), bias [C_out]."""

    def trace(self, tr, module, qualname, args, kwargs, out) -> None:
        x = args[0] if args else kwargs["x"]
        tr.set(out, layer_rules.conv_rule(tr, x, out, (qualname, "weight"), (qualname, "bias"),
                                          module.weight.shape, groups=1, transposed=False))

    def finalize(self, module, kept) -> None:
        module.out_channels, module.in_channels = module.weight.shape


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.mix = ChannelMix(16, 24)
        self.out = nn.Conv2d(24, 3, 3, padding=1)

    def forward(self, x):
        return self.out(F.relu(self.mix(F.relu(self.conv(x)))))


def test_without_a_handler_the_error_names_the_op_and_the_way_out():
    with pytest.raises(UnsupportedOpError, match="tensordot.*handlers="):
        channel_groups(Block(), torch.randn(1, 3, 8, 8))


def test_a_handler_for_one_call_analyses_and_compacts_exactly():
    torch.manual_seed(0)
    model, x = Block().eval(), torch.randn(1, 3, 12, 10)
    handlers = {ChannelMix: ChannelMixHandler()}
    analysis = channel_groups(model, x, handlers=handlers)
    sizes = sorted(g.size for g in analysis.prunable)
    assert sizes == [16, 24]
    generator = torch.Generator().manual_seed(1)
    masks = {g.name: torch.rand(g.size, generator=generator) < 0.5 for g in analysis.prunable}
    for mask in masks.values():
        mask[0] = True
    small, kept = compact(model, x, masks=masks, handlers=handlers, verify=True, return_masks=True)
    assert small.mix.weight.shape == (int(kept[analysis.prunable[1].name].sum()),
                                      int(kept[analysis.prunable[0].name].sum()))
    assert (small.mix.out_channels, small.mix.in_channels) == tuple(small.mix.weight.shape)
    assert count_macs(small, x) == analysis.macs(kept) < analysis.dense_macs == count_macs(model, x)
    assert ChannelMix not in MODULE_RULES  # the registry is untouched


def test_bad_handlers_are_named():
    with pytest.raises(TypeError, match="not a ModuleHandler"):
        channel_groups(Block(), torch.randn(1, 3, 8, 8), handlers={ChannelMix: object()})
    with pytest.raises(TypeError, match="not an nn.Module subclass"):
        channel_groups(Block(), torch.randn(1, 3, 8, 8), handlers={int: ChannelMixHandler()})
    with pytest.raises(TypeError, match="handlers must be a dict"):
        channel_groups(Block(), torch.randn(1, 3, 8, 8), handlers=[ChannelMixHandler()])
