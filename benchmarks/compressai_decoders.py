"""compact() on CompressAI's image-codec decoders (synthesis g_s and hyper-synthesis h_s), out
of the box: exactness (verify=True) at 50 % fewer MACs and the MAC account.

CompressAI 1.2.8 pins numpy < 2 and pulls torch-geometric and pandas, so it is not a dependency
of this project. To run this check, unpack its wheel without installing it::

    pip download --no-deps compressai==1.2.8 -d /tmp/cai && unzip -q /tmp/cai/*.whl -d /tmp/cai/pkg
    PYTHONPATH=/tmp/cai/pkg:. python -m benchmarks.compressai_decoders

Modules that only its datasets and point-cloud codecs import (torch-geometric, pandas,
requests, einops, plotly) are replaced by empty stand-ins; the image codecs do not use them.
"""
import importlib.abc
import importlib.machinery
import sys
from unittest import mock

import torch

from lwdvc_kernels import channel_groups, compact, count_macs
from tests.compact.helpers import masks_for_reduction


class _StandIns(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    PREFIXES = ("torch_geometric", "pandas", "requests", "einops", "plotly")

    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in self.PREFIXES:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = mock.MagicMock()
        module.__path__, module.__spec__, module.__name__ = [], spec, spec.name
        return module

    def exec_module(self, module):
        pass


def main() -> None:
    sys.meta_path.insert(0, _StandIns())
    from compressai.models import (
        Cheng2020Anchor,
        Cheng2020Attention,
        FactorizedPrior,
        JointAutoregressiveHierarchicalPriors,
        MeanScaleHyperprior,
        ScaleHyperprior,
    )

    for cls in (FactorizedPrior, ScaleHyperprior, MeanScaleHyperprior, JointAutoregressiveHierarchicalPriors,
                Cheng2020Anchor, Cheng2020Attention):
        torch.manual_seed(0)
        model = cls(N=32) if "Cheng" in cls.__name__ else cls(N=32, M=48)
        for part in ("g_s", "h_s"):
            decoder = getattr(model, part, None)
            if decoder is None:
                continue
            decoder = decoder.eval()
            with torch.no_grad():  # random weights everywhere (GDN keeps its own positive init)
                for p in decoder.parameters():
                    if p.dim() > 1:
                        p.copy_(torch.randn_like(p) / max(1, p[0].numel()) ** 0.5)
            first = next(m for m in decoder.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
            y = torch.randn(1, first.in_channels, 3, 4)
            try:
                analysis = channel_groups(decoder, y)
                masks = masks_for_reduction(analysis, 0.5, 0)
                small, kept = compact(decoder, y, masks=masks, verify=True, return_masks=True)
                print(f"{cls.__name__}.{part}: exact, {len(analysis.prunable)} prunable groups, MACs "
                      f"{analysis.dense_macs} -> {count_macs(small, y)} (analysis {analysis.macs(kept)})")
            except Exception as error:  # report every decoder, whatever fails
                print(f"{cls.__name__}.{part}: FAIL {type(error).__name__}: {str(error)[:250]}")


if __name__ == "__main__":
    main()
