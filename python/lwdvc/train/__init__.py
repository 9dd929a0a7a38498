"""Rate-distortion training of video codecs (I-frame + P-frame codec) with exact resume and DDP.

Public API:
    TrainConfig         the run's configuration (JSON-able, stored in checkpoints)
    train(config, out_dir, resume=False)   the training loop
    TrainingDiverged    raised when the loss or gradient becomes NaN/inf

The codec it trains, :class:`lwdvc.models.VideoCodec`, lives with the models.
"""
from lwdvc.train.config import DCVC_HEM_LAMBDAS, STAGES, TrainConfig, default_lambdas
from lwdvc.train.loop import CHECKPOINT_NAME, TrainingDiverged, load_init_weights, train

__all__ = ["CHECKPOINT_NAME", "DCVC_HEM_LAMBDAS", "STAGES", "TrainConfig", "TrainingDiverged",
           "default_lambdas", "load_init_weights", "train"]
