"""Channel pruning of decoder modules: global MAC budget, gradient decay, compaction.

Public API:
    Pruner(model, modules, example_inputs, target_mac_reduction=0.65, mode="gd", selection="budget", ...)
    Pruner.for_codec(model, frame_size=(64, 64), ...)
    finalize(pruner, verify=True)                compacted copy of the model (round_to: the pruner's)
    SigmoidSchedule, beta_schedule, lambda3_schedule, target_ramp
    MetricsLogger, JsonlLogger, CsvLogger, read_metrics, plot_training_curves, plot_run_comparison
    PruneConfigError, MODES, SELECTIONS
"""
from lwdvc.prune.finalize import finalize
from lwdvc.prune.logging import CsvLogger, JsonlLogger, MetricsLogger, MultiLogger, read_metrics
from lwdvc.prune.plots import plot_run_comparison, plot_training_curves
from lwdvc.prune.pruner import MODES, SELECTIONS, Pruner
from lwdvc.prune.scope import PruneConfigError
from lwdvc.schedules import SigmoidSchedule, beta_schedule, lambda3_schedule, target_ramp

__all__ = [
    "Pruner", "MODES", "SELECTIONS", "finalize", "PruneConfigError", "SigmoidSchedule", "beta_schedule",
    "lambda3_schedule", "target_ramp", "MetricsLogger", "JsonlLogger", "CsvLogger", "MultiLogger",
    "read_metrics", "plot_training_curves", "plot_run_comparison",
]
