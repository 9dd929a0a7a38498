"""Learnt video codecs (FVC, DCVC, DCVC-HEM) with official-checkpoint-compatible state_dicts.

Public API:
    build(name, **config)        instantiate a registered model
    load_official(name, path)    build it and load an official checkpoint file
    available()                  registered model names
    register(name)               decorator used by the model files
    pretrained(name)             a trained codec shipped with the package (lwdvc/weights/)
    VideoCodec, FAMILIES         an I-frame + P-frame codec of one family, one interface for all
"""
from __future__ import annotations

import importlib

from lwdvc.models.pretrained import available_pretrained, pretrained
from lwdvc.models.video_codec import FAMILIES, VideoCodec
from lwdvc.models.zoo import available, build, load_official, register

__all__ = ["FAMILIES", "VideoCodec", "available", "available_pretrained", "build", "load_official", "pretrained",
           "register"]

# Model files register themselves on import; a model file that is missing is simply not offered.
for _module in ("dcvc", "dcvc_hem", "dcvc_hem_intra", "hyperprior", "fvc"):
    try:
        importlib.import_module(f"lwdvc.models.{_module}")
    except ModuleNotFoundError as error:
        if error.name != f"lwdvc.models.{_module}":
            raise
