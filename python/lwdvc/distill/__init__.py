"""Adaptive layer-wise distillation of decoder features from a frozen dense teacher.

Public API:
    LayerwiseDistiller(teacher, student, layers=None, total_steps=..., lambda3=1.0, ...)
    normalise_channels(F), feature_distance(student_F, teacher_F), FeatureRecorder
"""
from lwdvc.distill.features import FeatureRecorder, feature_distance, normalise_channels
from lwdvc.distill.layerwise import LayerwiseDistiller

__all__ = ["LayerwiseDistiller", "FeatureRecorder", "feature_distance", "normalise_channels"]
