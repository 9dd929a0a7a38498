"""The whole FVC decode path goes through the engine's channel analysis and compaction,
including a deformable convolution left with uneven deformable groups."""
from __future__ import annotations

import pytest
import torch
from torch import nn

compact_module = pytest.importorskip("lwdvc_kernels.compaction")

from lwdvc.models import build  # noqa: E402


class _DecodePath(nn.Module):
    """decode() as a module: (padded ref frame, q_offset, q_residual) -> pre-clamp recon."""

    def __init__(self, fvc: nn.Module) -> None:
        super().__init__()
        self.fvc = fvc

    def forward(self, ref: torch.Tensor, q_offset: torch.Tensor, q_residual: torch.Tensor) -> torch.Tensor:
        return self.fvc.decode(ref, q_offset, q_residual)["recon_image_preclamp"]


def test_decode_path_compacts_with_uneven_deformable_groups():
    torch.manual_seed(0)
    model = build("fvc", width=0.25).eval()
    torch.nn.init.normal_(model.aligner.deformable_convolution.conv_offset.weight, std=0.1)
    path = _DecodePath(model)
    inputs = (torch.rand(1, 3, 64, 64), torch.randn(1, 32, 4, 4).round(), torch.randn(1, 32, 4, 4).round())
    analysis = compact_module.channel_groups(path, inputs)
    names = {group.name for group in analysis.prunable}
    assert "fvc.aligner.deformable_convolution" in names  # the aligned-feature stream
    assert "fvc.aligner.deformable_convolution.conv_offset" not in names  # offsets are never pruned
    masks = {}
    for group in analysis.prunable:
        keep = torch.ones(group.size, dtype=torch.bool)
        keep[torch.randperm(group.size)[: group.size // 3]] = False
        masks[group.name] = keep
    masks["fvc.Encoder.conv1"] = torch.arange(16) % 8 != 0  # drops channel 0 (group 0) and 8 (group 4)
    small = compact_module.compact(path, inputs, masks=masks, verify=True)  # raises on mismatch
    dcn = small.fvc.aligner.deformable_convolution
    assert dcn.in_channels == 14 and sum(dcn.group_sizes) == 14 and not dcn.uniform_groups
    assert dcn.out_channels < 16
    assert small(*inputs).shape == (1, 3, 64, 64)
