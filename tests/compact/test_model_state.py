"""channel_groups() and compact() leave the caller's model as it was (BatchNorm statistics, user
buffers, train/eval flag), also for a model in train mode; the compacted model keeps the flag."""
from __future__ import annotations

import copy

import torch
from torch import nn

from lwdvc_kernels.compaction import channel_groups, compact
from lwdvc_kernels.compaction.slicing import zero_pruned


class CountingNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        self.calls += 1
        return self.conv2(torch.relu(self.bn(self.conv1(x))))


def _model() -> CountingNet:
    torch.manual_seed(0)
    model = CountingNet()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.weight.uniform_(0.5, 1.5)
        model.bn.bias.uniform_(-0.5, 0.5)
    return model.train()


def _same_state(model: nn.Module, before: dict) -> bool:
    now = model.state_dict()
    return now.keys() == before.keys() and all(torch.equal(before[k], v) for k, v in now.items())


def test_channel_groups_leaves_a_training_model_unchanged():
    model = _model()
    before = copy.deepcopy(model.state_dict())
    channel_groups(model, torch.randn(2, 3, 8, 8))
    assert _same_state(model, before)
    assert model.training and model.bn.training


def test_compact_leaves_a_training_model_unchanged_and_matches_it_in_eval():
    model = _model()
    model.conv1.eval()  # a mixed-mode model: the flags of every submodule are kept
    x = torch.randn(2, 3, 8, 8)
    before = copy.deepcopy(model.state_dict())
    masks = {name: torch.arange(size) % 2 == 0 for name, size in
             ((g.name, g.size) for g in channel_groups(model, x).groups if g.prunable)}
    assert masks
    small, keep = compact(model, x, masks=masks, return_masks=True, memory_format=torch.contiguous_format)
    assert _same_state(model, before)
    assert model.training and model.bn.training and not model.conv1.training
    assert small.training and small.bn.training and not small.conv1.training
    assert int(small.calls) == int(model.calls) == 0
    torch.testing.assert_close(small.bn.running_mean, model.bn.running_mean[keep[next(iter(keep))]])
    masked = copy.deepcopy(model).eval()
    zero_pruned(masked, channel_groups(masked, x), keep)
    small.eval()
    with torch.no_grad():
        torch.testing.assert_close(small(x), masked(x), rtol=1e-5, atol=1e-6)
