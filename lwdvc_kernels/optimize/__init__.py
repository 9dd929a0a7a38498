"""Inference optimisation of (compacted) decoder modules: fused ops, layout and dtype strategy.

Files: ``fused`` (FusedConv2d, FusedGDN), ``patterns`` (fx pattern matching and rewriting),
``cpu`` (channels_last / bfloat16 boundary), ``verify`` (output comparison), ``optimizer``
(the public entry point).

    fast = lwdvc_kernels.optimize.optimize(module, example_inputs, device="cpu", dtype=torch.bfloat16)
"""
from lwdvc_kernels.optimize.cpu import keep_freed_memory
from lwdvc_kernels.optimize.fused import FusedConv2d, FusedGDN
from lwdvc_kernels.optimize.optimizer import DTYPE_TOLERANCE, optimize
from lwdvc_kernels.optimize.patterns import FusionReport, fuse_module
from lwdvc_kernels.optimize.verify import OptimizationMismatch

__all__ = ["optimize", "fuse_module", "keep_freed_memory", "FusedConv2d", "FusedGDN", "FusionReport",
           "OptimizationMismatch", "DTYPE_TOLERANCE"]


# ``lwdvc_kernels.optimize(...)`` calls the function even after this package was imported (the
# package attribute then shadows a lazily exported function of the same name).
class _CallablePackage(type(__import__("sys"))):
    def __call__(self, *args, **kwargs):
        return optimize(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallablePackage
