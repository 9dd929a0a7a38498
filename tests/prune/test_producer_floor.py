"""No producing layer is emptied when its group also holds fixed channels (concat with an input)."""
from __future__ import annotations

import torch
from torch import nn

from lwdvc.prune import Pruner, finalize


class ConcatBlock(nn.Module):
    """``conv_b(cat([x, conv_a(x)]) + conv_c(x))``: conv_a's channels share a group with fixed input ones."""

    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(c, c, 3, padding=1)
        self.conv_c = nn.Conv2d(c, 2 * c, 3, padding=1)
        self.conv_b = nn.Conv2d(2 * c, c, 3, padding=1)

    def forward(self, x):
        return self.conv_b(torch.cat([x, self.conv_a(x)], dim=1) + self.conv_c(x))


class Wrapper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = ConcatBlock()


def test_concat_producer_keeps_a_channel_at_any_target():
    torch.manual_seed(0)
    model = Wrapper()
    x = torch.randn(1, 8, 8, 8)
    pruner = Pruner(model, {"block": model.block}, {"block": (x,)}, target_mac_reduction=0.5,
                    total_steps=4, ramp_steps=0, min_keep=0.1)
    (group,) = pruner.groups
    assert int(group.fixed.sum()) == 8 and group.size == 16  # the input half is fixed
    assert group.layers and group.layers[0][1] == 1  # conv_a keeps ceil(0.1 * 8) = 1 free channel
    pruner.update_masks(0.99)  # asks for more than the floors allow: everything prunable goes
    kept = group.mask > 0.5
    assert int(kept[~group.fixed].sum()) == 1
    small, report = finalize(pruner, verify=True, return_report=True)
    assert small.block.conv_a.out_channels == 1
    assert small.block.conv_b.in_channels == 9 and small.block.conv_c.out_channels == 9
    assert torch.isfinite(small.block(x)).all()
