"""Channel-group analysis and compaction of pruned models.

Files: ``trace`` (execution tracer), ``graph`` (channel elements and coupling), ``derived``
(tensors computed in forward from stored ones), ``stored_records`` (their records moved onto
the stored tensors),
``function_rules`` / ``module_rules`` / ``engine_rules`` / ``layer_rules`` (per-op and per-layer
handlers), ``groups`` (groups, members, MAC accounting), ``slicing`` (masking and slicing of
tensors), ``verify`` (masked vs compacted check), ``compactor`` (public entry points).
"""
from lwdvc_kernels.compaction.compactor import channel_groups, compact, round_masks, rounded_count, set_memory_format
from lwdvc_kernels.compaction.engine_rules import register_engine_layers
from lwdvc_kernels.compaction.graph import UnsupportedOpError
from lwdvc_kernels.compaction.groups import ChannelAnalysis, ChannelGroup, Member
from lwdvc_kernels.compaction.module_rules import ModuleHandler, register_module_handler
from lwdvc_kernels.compaction.verify import CompactionMismatch

register_engine_layers()

__all__ = [
    "channel_groups", "compact", "round_masks", "rounded_count", "set_memory_format", "ChannelAnalysis", "ChannelGroup",
    "Member",
    "ModuleHandler", "register_module_handler", "UnsupportedOpError", "CompactionMismatch",
]

