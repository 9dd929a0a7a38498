"""Inference optimisation of (compacted) decoder modules: fused ops, layout and dtype strategy.

Files: ``fused`` (FusedConv2d, FusedGDN), ``patterns`` (fx pattern matching and rewriting),
``cpu`` (channels_last / bfloat16 boundary), ``verify`` (output comparison), ``optimizer``
(the public entry point).

    fast = lwdvc_kernels.optimize(module, example_inputs, device="cpu", dtype=torch.bfloat16)
"""
from lwdvc_kernels.optimization.cpu import keep_freed_memory
from lwdvc_kernels.optimization.fused import FusedConv2d, FusedGDN
from lwdvc_kernels.optimization.optimizer import DTYPE_TOLERANCE, optimize
from lwdvc_kernels.optimization.patterns import FusionReport, fuse_module
from lwdvc_kernels.optimization.verify import OptimizationMismatch

__all__ = ["optimize", "fuse_module", "keep_freed_memory", "FusedConv2d", "FusedGDN", "FusionReport",
           "OptimizationMismatch", "DTYPE_TOLERANCE"]

