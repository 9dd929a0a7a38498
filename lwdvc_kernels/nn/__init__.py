"""Generic layers the engine knows how to trace, prune and fuse (no model-specific code)."""
from lwdvc_kernels.nn.gdn import GDN, IGDN, lower_bound
from lwdvc_kernels.nn.masked_conv import MaskedConv2d, raster_mask

__all__ = ["GDN", "IGDN", "MaskedConv2d", "lower_bound", "raster_mask"]
from lwdvc_kernels.nn.deform_conv import DeformConv2d  # noqa: E402,F401
