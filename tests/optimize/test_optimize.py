"""optimize: fused decoders equal the unoptimised ones (float32 <= 1e-5, bf16 bound), patterns found."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lwdvc_kernels.nn import GDN, IGDN, MaskedConv2d
from lwdvc_kernels.optimization import DTYPE_TOLERANCE, FusedConv2d, FusedGDN, OptimizationMismatch, optimize
from lwdvc_kernels.optimization.verify import relative_error


class ResBlock(nn.Module):
    def __init__(self, c: int, pre_activation: bool = False) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        self.act = nn.LeakyReLU(0.1)
        self.pre_activation = pre_activation

    def forward(self, x):
        h = self.act(x) if self.pre_activation else x
        return x + self.conv2(self.act(self.conv1(h)))


class Decoder(nn.Module):
    """Irregular channel counts like a compacted decoder: subpel convs, IGDN, res blocks, ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(11, 13 * 4, 3, padding=1), nn.PixelShuffle(2), IGDN(13))
        self.body = nn.Sequential(ResBlock(13), ResBlock(13, pre_activation=True))
        self.up = nn.Sequential(nn.Conv2d(13, 7 * 4, 3, padding=1), nn.PixelShuffle(2), nn.ReLU())
        self.gdn = GDN(7)
        self.tail = nn.Conv2d(7, 3, 5, padding=2)

    def forward(self, x, skip):
        y = self.up(self.body(self.head(x)))
        return self.tail(self.gdn(y) + skip), y


class Untraceable(nn.Module):
    """Data-dependent control flow: fx cannot trace it, its children are fused one by one."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(5, 6, 3, padding=1), nn.ReLU(), IGDN(6))

    def forward(self, x):
        y = self.block(x)
        return y * 2 if float(y.mean()) > 0 else y


def _randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("beta"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif name.endswith("gamma"):
                p.copy_(0.2 * torch.rand(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return module.eval()


def _inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 11, 6, 5, generator=g), torch.randn(1, 7, 24, 20, generator=g)


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_float32_equals_original_and_fuses_every_pattern(channels_last):
    model = _randomise(Decoder())
    inputs = _inputs()
    fast, report = optimize(model, inputs, channels_last=channels_last, return_report=True)
    assert relative_error(model, fast, _inputs(seed=5)) <= 1e-5
    text = "\n".join(report.fused)
    assert "conv + shuffle x2" in text                     # head
    assert text.count("act=leaky_relu") == 2 and text.count("+residual") == 2  # res blocks
    assert "conv + act=relu + shuffle x2" in text          # up (ReLU after the shuffle)
    assert text.count("GDN(inverse=True)") == 1 and text.count("GDN(inverse=False)") == 1
    fused = [m for m in fast.modules() if isinstance(m, (FusedConv2d, FusedGDN))]
    assert len(fused) == 9  # 7 convs, 2 GDN; the pre-activation LeakyReLU stays plain PyTorch


def test_original_is_untouched_and_outputs_keep_dtype_and_layout():
    model = _randomise(Decoder())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = optimize(model, _inputs(), dtype=torch.bfloat16)
    for k, v in model.state_dict().items():
        assert v.dtype == torch.float32 and torch.equal(v, before[k])
    out, y = fast(*_inputs())
    assert out.dtype == torch.float32 and y.dtype == torch.float32 and y.shape == (1, 7, 24, 20)
    assert y.is_contiguous(memory_format=torch.channels_last)  # no copy back at the boundary


def test_bfloat16_within_documented_bound():
    model = _randomise(Decoder())
    fast = optimize(model, _inputs(), dtype=torch.bfloat16)
    error = relative_error(model, fast, _inputs(seed=3))
    assert 0 < error <= DTYPE_TOLERANCE[torch.bfloat16]


def test_untraceable_module_is_fused_per_child():
    model = _randomise(Untraceable())
    x = torch.randn(1, 5, 8, 8)
    fast, report = optimize(model, x, return_report=True)
    assert any("not traceable" in line for line in report.skipped)
    assert sum(isinstance(m, (FusedConv2d, FusedGDN)) for m in fast.modules()) == 2
    assert relative_error(model, fast, (x,)) <= 1e-5


def test_masked_conv_and_functional_patterns():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.ar = MaskedConv2d(4, 8, kernel_size=5, padding=2)
            self.conv = nn.Conv2d(8, 8, 3, padding=1)

        def forward(self, x):
            y = F.leaky_relu(self.ar(x), 0.2)
            out = self.conv(y)
            out += y
            return F.pixel_shuffle(out, 2)

    model = _randomise(Functional())
    x = torch.randn(1, 4, 6, 7)
    fast, report = optimize(model, x, channels_last=False, return_report=True)
    assert report.fused == ["ar: conv + act=leaky_relu", "conv: conv + +residual"]
    assert relative_error(model, fast, (x,)) <= 1e-5


def test_padding_modes_that_do_not_fuse_stay_plain():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, padding_mode="replicate"), nn.ReLU()).eval()
    fast, report = optimize(model, torch.randn(1, 3, 5, 5), return_report=True)
    assert report.fused == [] and "replicate" in report.skipped[0]
    assert relative_error(model, fast, (torch.randn(1, 3, 5, 5),)) <= 1e-6


def test_mismatch_is_reported(monkeypatch):
    import lwdvc_kernels.optimization.optimizer as optimizer

    monkeypatch.setattr(optimizer, "relative_error", lambda *args: 1.0)
    with pytest.raises(OptimizationMismatch, match="relative error"):
        optimize(_randomise(Decoder()), _inputs())


def test_bad_arguments():
    with pytest.raises(TypeError, match="nn.Module"):
        optimize(lambda x: x, torch.randn(1))
    with pytest.raises(ValueError, match="device"):
        optimize(nn.Conv2d(1, 1, 1), torch.randn(1, 1, 2, 2), device="meta")
    with pytest.raises(ValueError, match="dtype"):
        optimize(nn.Conv2d(1, 1, 1), torch.randn(1, 1, 2, 2), dtype=torch.int8)


def test_export_of_an_optimised_module():
    model = _randomise(Decoder())
    fast = optimize(model, _inputs(), channels_last=False)
    exported = torch.export.export(fast, _inputs())
    targets = {str(n.target) for n in exported.graph.nodes}
    assert "lwdvc.conv2d_epilogue.default" in targets and "lwdvc.gdn.default" in targets
    torch.testing.assert_close(exported.module()(*_inputs()), fast(*_inputs()))


def test_layers_without_low_precision_kernels_stay_float32():
    from lwdvc_kernels.nn import DeformConv2d
    from lwdvc_kernels.optimization.cpu import Float32Island

    class Aligner(nn.Module):
        def __init__(self):
            super().__init__()
            self.dcn = DeformConv2d(6, 6, 3, padding=1, offset_in_channels=6)
            self.conv = nn.Conv2d(6, 6, 3, padding=1)

        def forward(self, x, offsets):
            return self.conv(self.dcn(x, offsets))

    model = _randomise(Aligner())
    inputs = (torch.randn(1, 6, 8, 8), torch.randn(1, 6, 8, 8))
    fast = optimize(model, inputs, dtype=torch.float16)  # the engine's deformable-conv kernel has no float16
    islands = [m for m in fast.modules() if isinstance(m, Float32Island)]
    assert len(islands) == 1 and all(p.dtype == torch.float32 for p in islands[0].parameters())
    assert relative_error(model, fast, inputs) <= DTYPE_TOLERANCE[torch.float16]
