"""Weights computed in forward from stored parameters (reparametrised GDN/IGDN, parametrize,
weight normalisation): the analysis follows them back to the stored tensors and slices those,
exactly, with no handler and no user code."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lwdvc_kernels import channel_groups, compact, count_macs
from lwdvc_kernels.compaction import UnsupportedOpError
from lwdvc_kernels.masking import attach_masks
from lwdvc_kernels.serialize import load, save
from tests.compact.helpers import masks_for_reduction, randomized
from tests.compact.reparametrized_layers import GDN, HyperpriorSynthesis, WeightNormDecoder


@pytest.mark.parametrize("seed", [0, 1])
def test_hyperprior_synthesis_with_reparametrized_igdn_compacts_exactly(seed):
    model = randomized(HyperpriorSynthesis(n=12, m=16), seed)
    y = torch.randn(1, 16, 3, 4)
    analysis = channel_groups(model, y)
    assert sorted(g.size for g in analysis.prunable) == [12, 12, 12]
    gdn_members = {(m.module, m.tensor, m.dim, m.role) for g in analysis.prunable for m in g.members
                   if m.module.endswith(("1", "3", "5"))}
    # stored gamma = 0 gives bound^2 - pedestal = 0: masking it zeroes the norm's weight rows;
    # beta is bounded below by beta_min > 0, so it is only sliced
    assert ("layers.1", "gamma", 0, "producer") in gdn_members
    assert ("layers.1", "gamma", 1, "consumer") in gdn_members
    assert ("layers.1", "beta", 0, "passive") in gdn_members
    masks = masks_for_reduction(analysis, 0.5, seed)
    small, kept = compact(model, y, masks=masks, verify=True, return_masks=True)
    kept_first = int(kept["layers.0"].sum())
    assert kept_first < 12
    assert small.layers[1].gamma.shape == (kept_first, kept_first)
    assert small.layers[1].beta.shape == (kept_first,)
    assert count_macs(small, y) == analysis.macs(kept) < analysis.dense_macs == count_macs(model, y)
    with torch.no_grad():
        reference = model(y)
    assert reference.abs().sum() > 0


def test_gdn_norm_channels_are_not_zero_when_pruned_but_its_output_is():
    """GDN's bounded gamma/beta are never zero: they are sliced (passive), not masked, and the
    channel stays prunable because GDN multiplies its input."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), GDN(8), nn.Conv2d(8, 3, 3, padding=1))
    randomized(model, 3)
    analysis = channel_groups(model, torch.randn(1, 3, 6, 6))
    group = analysis["0"]
    assert group.size == 8 and not bool(group.fixed.any())
    assert {(m.tensor, m.role) for m in group.members if m.module == "1"} == {
        ("gamma", "producer"), ("gamma", "consumer"), ("beta", "passive")}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weight_norm_and_parametrizations_compact_exactly(seed):
    torch.manual_seed(seed)
    model = randomized(WeightNormDecoder(c=16), seed)
    with torch.no_grad():
        model.gain.parametrizations.scale.original.copy_(0.3 * torch.randn(1, 16, 1, 1))
    x = torch.randn(1, 8, 6, 5)
    analysis = channel_groups(model, x)
    names = {g.name for g in analysis.prunable}
    assert "head" in names  # named after the layer, not its parametrization
    roles = {(m.module, m.tensor, m.dim): m.role for g in analysis.groups for m in g.members}
    assert roles[("head.parametrizations.weight", "original0", 0)] == "producer"  # g: masking it zeroes w
    assert roles[("head.parametrizations.weight", "original1", 0)] == "passive"  # v: sliced only
    assert roles[("body.parametrizations.weight", "original1", 1)] == "consumer"
    assert roles[("swap.parametrizations.weight", "original", 1)] == "producer"  # stored transposed
    assert roles[("gain.parametrizations.scale", "original", 1)] == "passive"
    assert analysis.rescales, "slicing v's input channels needs the weight-norm repair"
    masks = masks_for_reduction(analysis, 0.5, seed)
    small, kept = compact(model, x, masks=masks, verify=True, return_masks=True)
    assert count_macs(small, x) == analysis.macs(kept) < analysis.dense_macs
    head = int(kept["head"].sum())
    assert small.head.weight.shape[0] == head == small.head.out_channels == small.body.in_channels
    assert small.head.parametrizations.weight.original0.shape[0] == head
    assert small.gain.scale.shape == (1, head, 1, 1)


def test_weight_norm_repair_is_what_makes_it_exact():
    """Slicing v's input channels without rescaling g changes the weights: the repair matters."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 10, 3, padding=1), nn.ReLU(),
                          torch.nn.utils.parametrizations.weight_norm(nn.Conv2d(10, 4, 3, padding=1))).eval()
    x = torch.randn(1, 4, 6, 6)
    analysis = channel_groups(model, x)
    keep = torch.ones(10, dtype=torch.bool)
    keep[[1, 4, 7]] = False
    small = compact(model, x, masks={"0": keep}, verify=True)
    plain = nn.Conv2d(7, 4, 3, padding=1)
    with torch.no_grad():
        hidden = torch.relu(model[0](x)) * keep.view(1, -1, 1, 1)  # the masked model
        masked = model[2](hidden)
        plain.weight.copy_(model[2].parametrizations.weight.original1[:, keep])
        plain.bias.copy_(model[2].bias)
        unrepaired = F.conv2d(hidden[:, keep], torch._weight_norm(
            plain.weight, model[2].parametrizations.weight.original0, 0), plain.bias, padding=1)
        assert not torch.allclose(unrepaired, masked, rtol=1e-3, atol=1e-4)
        torch.testing.assert_close(small(x), masked, rtol=1e-5, atol=1e-5)
    assert len(analysis.rescales) == 1


class ComputedFromInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        h = self.conv(x)
        weight = h.mean((0, 2, 3)).reshape(1, 8, 1, 1).expand(3, 8, 1, 1).contiguous()
        return F.conv2d(h, weight)


class Orthogonal(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.mix = nn.Parameter(torch.randn(6, 6))

    def forward(self, x):
        q = torch.linalg.qr(self.mix).Q
        return F.conv2d(self.conv(x), q.reshape(6, 6, 1, 1))


class SummedOverInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.v = nn.Parameter(torch.randn(4, 6, 1, 1))

    def forward(self, x):
        w = self.v / self.v.abs().sum(1, keepdim=True)  # normalised over the input channels
        return F.conv2d(torch.relu(self.conv(x)), w)


class ScaledByPosition(nn.Module):
    """A weight times a constant built in forward that differs per output channel."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 3, 3, 3))
        self.out = nn.Conv2d(6, 3, 1)

    def forward(self, x):
        ramp = torch.arange(1, 7, dtype=x.dtype).view(6, 1, 1, 1)
        return self.out(torch.relu(F.conv2d(x, self.w * ramp, padding=1)))


def test_what_cannot_be_followed_is_named_or_kept():
    x = torch.randn(1, 3, 6, 6)
    with pytest.raises(UnsupportedOpError, match="computed in forward from the module's inputs"):
        channel_groups(ComputedFromInput(), x)
    with pytest.raises(UnsupportedOpError, match="linalg_qr"):
        channel_groups(Orthogonal(), x)
    analysis = channel_groups(SummedOverInputs(), x)  # exact: the summed channels are kept
    assert analysis["conv"].fixed.all()
    assert "mixes dim 1 of v (a reduction" in analysis["conv"].reasons[0]
    model = ScaledByPosition().eval()
    analysis = channel_groups(model, x)  # slicing w would misalign the ramp: w's channels are kept
    assert not analysis.prunable and all(m.tensor != "w" for g in analysis.groups for m in g.members)
    small = compact(model, x, verify=True)
    assert small.w.shape == model.w.shape


@pytest.mark.parametrize("cls,x", [(HyperpriorSynthesis, torch.randn(1, 16, 3, 4)),
                                   (WeightNormDecoder, torch.randn(1, 8, 6, 5))])
def test_masks_attach_to_stored_tensors_and_compacted_models_round_trip(tmp_path, cls, x):
    """The pruner's path: masks on the stored tensors (inside parametrizations too), a forward
    pass with them, compaction from the attached masks, save/load from the dense architecture."""
    model = randomized(cls(), 4)
    analysis = channel_groups(model, x)
    masks = attach_masks(model, analysis.groups)
    generator = torch.Generator().manual_seed(4)
    for mask in masks.values():
        mask.copy_((torch.rand(mask.shape, generator=generator) < 0.5).to(mask.dtype))
        mask[0] = 1
    with torch.no_grad():
        masked = model(x)
    small = compact(model, x, verify=True)
    with torch.no_grad():
        torch.testing.assert_close(small(x), masked, rtol=1e-5, atol=1e-5)
    save(small, tmp_path / "small.safetensors")
    restored = load(tmp_path / "small.safetensors", template=randomized(cls(), 9))
    with torch.no_grad():
        torch.testing.assert_close(restored(x), small(x), rtol=0, atol=0)


def test_hook_based_weight_norm_compacts_with_its_attributes_repaired():
    """The older ``torch.nn.utils.weight_norm`` computes ``weight`` in a forward pre-hook."""
    import warnings

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the hook-based API is deprecated in favour of parametrizations
        normed = torch.nn.utils.weight_norm(nn.Conv2d(8, 6, 3, padding=1))
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), normed, nn.ReLU(), nn.Conv2d(6, 3, 1)).eval()
    x = torch.randn(1, 3, 6, 6)
    masks = {"0": torch.tensor([1, 0, 1, 1, 0, 1, 1, 1]).bool(), "2": torch.tensor([1, 1, 0, 1, 1, 0]).bool()}
    small = compact(model, x, masks=masks, verify=True)
    assert small[2].weight_v.shape == (4, 6, 3, 3) and small[2].weight_g.shape == (4, 1, 1, 1)
    assert (small[2].in_channels, small[2].out_channels) == (6, 4) == (small[0].out_channels, small[4].in_channels)
