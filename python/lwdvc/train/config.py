"""Training configuration: one JSON-able dataclass, validated on construction."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from lwdvc.errors import ConfigError
from lwdvc.models.video_codec import FAMILIES, check_codec_config

__all__ = ["TrainConfig", "DCVC_HEM_LAMBDAS", "STAGES", "PRECISIONS", "default_lambdas", "check_finite_fields"]

#: Rate-distortion lambdas of DCVC-HEM's four rate points (MSE on [0, 1] frames).
DCVC_HEM_LAMBDAS = (85.0, 170.0, 380.0, 840.0)
#: What a run trains: the I-frame codec alone, the P-frame codec's motion estimator on synthetic
#: motion ("flow"), its motion coding with a warping loss ("motion"), the whole P-frame codec on
#: pairs of original frames ("residual"), the P-frame codec over GOPs (I-frame codec frozen), or
#: both codecs.
STAGES = ("intra", "flow", "motion", "residual", "inter", "joint")
#: Numeric precision of the training forward pass (see TrainConfig.precision).
PRECISIONS = ("float32", "bfloat16")


def default_lambdas(rate_points: int) -> list[float]:
    """DCVC-HEM's lambdas for 4 rate points; otherwise geometric over [85, 840] (380 for one)."""
    if rate_points == len(DCVC_HEM_LAMBDAS):
        return list(DCVC_HEM_LAMBDAS)
    if rate_points == 1:
        return [380.0]
    low, high = DCVC_HEM_LAMBDAS[0], DCVC_HEM_LAMBDAS[-1]
    return [low * (high / low) ** (i / (rate_points - 1)) for i in range(rate_points)]


def check_finite_fields(config: Any) -> None:
    """Raise :class:`ConfigError` naming every numeric field of the dataclass ``config`` (or number
    in a list/tuple field) that is NaN or infinite."""
    bad = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isfinite(v) for v in values):
            bad.append(f"{f.name}={value}")
    if bad:
        raise ConfigError(f"settings must be finite numbers, got {', '.join(bad)}")


@dataclass
class TrainConfig:
    """Everything that determines a training run (stored in every checkpoint as JSON).

    Attributes:
        family: codec family ("dcvc_hem", "dcvc", "fvc").
        width, intra_width: channel width factors of the P-frame and I-frame codecs.
        anchors: rate points of a variable-rate family.
        lambdas: RD lambda per rate point (loss = lambda * MSE + bpp); one value for fixed-rate
            families. Default: DCVC-HEM's four for four rate points, else geometric from 85 to
            840 over the rate points (one point: 380).
        stage: "intra" (single frames, I-frame codec only), "flow" (the P-frame codec's motion
            estimator alone, supervised by synthetic flow fields applied to real frames; loss:
            end-point error), "motion" (motion estimation and motion coding alone on real frame
            pairs; loss ``lambda * MSE(warped reference, frame) + motion bpp``), "residual" (the
            whole P-frame codec, each frame coded against the original previous frame: the
            contextual latent learns to carry information without the I-frame codec's errors and
            without drift), "inter" (GOPs from a decoded I-frame, I-frame codec frozen) or "joint".
        frames: frames per training group (1 I-frame followed by frames-1 P-frames).
        crop: square crop side (pixels) of the training groups.
        batch_size: global batch size (split over data-parallel ranks).
        steps: optimisation steps in total.
        lr: Adam learning rate; multiplied by ``lr_decay`` from step ``lr_decay_at * steps`` on.
        grad_clip: max gradient norm (0 disables clipping).
        rate_warmup: fraction of the steps over which the weight of the rate term grows linearly
            from 0 to 1 (0: full weight from the start). Starting with distortion alone makes a
            fresh contextual latent carry information before it is made cheap, instead of
            settling in the state where the P-frame codec sends motion and almost nothing else.
        rate_delay: fraction of the steps before the warm-up starts, with the rate term's weight
            at 0 (1.0: distortion alone for the whole run). A fresh contextual latent needs about a
            thousand distortion-only steps before the decoder uses it on unseen frames; any rate
            weight before that drives it to zero.
        train_modules: names of the P-frame codec's submodules to train in the "residual" and
            "inter" stages (empty: all of them), e.g. the contextual coder alone.
        fresh_modules: names of P-frame codec submodules that keep this seed's initial weights
            instead of those of ``init`` (a fresh frame generator of a frame-skip codec starts as
            a copy of the motion-compensated reference).
        seed: seed of weights, sampling and noise.
        data: training videos (paths); empty = the embedded default training clips; the names
            ``embedded:clips`` and ``embedded:stills`` (photographs moved by a camera path) add those.
        max_side, max_frames: downscaling / frame limit of the training videos.
        checkpoint_every: steps between checkpoints (the last step always writes one).
        keep_every: every this many steps (a multiple of ``checkpoint_every``), the checkpoint is
            also kept as ``checkpoint_step<step>.pt``, so that a run whose quality peaks before
            its end can be stopped at its best step afterwards (0: keep only the last one).
        log_every: steps between history records.
        threads: torch CPU threads per process (0 = leave torch's default).
        precision: "float32", or "bfloat16" to run the forward pass under bfloat16 autocast
            (convolutions and matrix products in bfloat16, likelihoods, losses, weights and
            optimiser state in float32); about 1.6x faster steps on CPUs with AVX512-BF16.
        init: where the starting weights come from: a checkpoint, ``pretrained:<name>``, or several
            ``PART=SOURCE`` items separated by commas that each load one part ("intra" or "inter")
            from a source, e.g. ``intra=a/checkpoint.pt,inter=b/checkpoint.pt``.
    """

    family: str = "dcvc_hem"
    width: float = 1.0
    intra_width: float | None = None
    anchors: int = 4
    lambdas: list[float] | None = None
    stage: str = "joint"
    frames: int = 3
    crop: int = 256
    batch_size: int = 4
    steps: int = 1000
    lr: float = 1e-4
    lr_decay: float = 0.1
    lr_decay_at: float = 0.8
    grad_clip: float = 1.0
    rate_warmup: float = 0.0
    rate_delay: float = 0.0
    train_modules: list[str] = field(default_factory=list)
    fresh_modules: list[str] = field(default_factory=list)
    seed: int = 0
    data: list[str] = field(default_factory=list)
    max_side: int | None = None
    max_frames: int | None = None
    checkpoint_every: int = 100
    keep_every: int = 0
    log_every: int = 10
    threads: int = 0
    init: str | None = None
    precision: str = "float32"

    def __post_init__(self) -> None:
        check_finite_fields(self)
        if self.intra_width is None:
            self.intra_width = self.width
        codec = self.codec_config()  # validates family and widths
        if self.lambdas is None:
            self.lambdas = default_lambdas(codec["anchors"])
        self.lambdas = [float(v) for v in self.lambdas]
        if len(self.lambdas) != codec["anchors"]:
            raise ConfigError(f"{len(self.lambdas)} lambdas given for {codec['anchors']} rate points "
                              f"of codec family {self.family!r}")
        if any(not v > 0 for v in self.lambdas):
            raise ConfigError(f"lambdas must be > 0, got {self.lambdas}")
        if self.stage not in STAGES:
            raise ConfigError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.stage in ("intra", "flow"):
            self.frames = 1
        elif self.frames < 2:
            raise ConfigError(f"stage {self.stage!r} needs frames >= 2 (an I-frame and P-frames), got {self.frames}")
        for name in ("crop", "batch_size", "steps", "checkpoint_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.keep_every < 0 or self.keep_every % self.checkpoint_every:
            raise ConfigError(f"keep_every must be 0 or a multiple of checkpoint_every ({self.checkpoint_every}), "
                              f"got {self.keep_every}")
        if self.crop % 16:
            raise ConfigError(f"crop must be a multiple of 16 (motion estimation), got {self.crop}")
        if not self.lr > 0 or not 0 < self.lr_decay_at <= 1 or not self.lr_decay > 0:
            raise ConfigError(f"bad learning-rate schedule: lr={self.lr}, lr_decay={self.lr_decay}, "
                              f"lr_decay_at={self.lr_decay_at}")
        if not 0.0 <= float(self.rate_warmup) < 1.0:
            raise ConfigError(f"rate_warmup must be a fraction of the steps in [0, 1), got {self.rate_warmup}")
        if not 0.0 <= float(self.rate_delay) <= 1.0 - float(self.rate_warmup):
            raise ConfigError(f"rate_delay must be a fraction of the steps in [0, 1 - rate_warmup], got "
                              f"{self.rate_delay} (rate_warmup {self.rate_warmup})")
        self.train_modules = [str(name) for name in self.train_modules]
        self.fresh_modules = [str(name) for name in self.fresh_modules]
        if self.train_modules and self.stage not in ("residual", "inter"):
            raise ConfigError(f"train_modules is for the stages 'residual' and 'inter', not {self.stage!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        self.data = [str(p) for p in self.data]

    def codec_config(self) -> dict[str, Any]:
        """The codec part, as :class:`~lwdvc.models.video_codec.VideoCodec` takes it."""
        anchors = self.anchors if self.family in FAMILIES and FAMILIES[self.family].variable_rate else 1
        return check_codec_config({"family": self.family, "width": self.width,
                                   "intra_width": self.intra_width, "anchors": anchors})

    def to_json(self) -> str:
        """Canonical JSON text of every field."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """Inverse of :meth:`to_json` (unknown keys are rejected by name)."""
        values = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown training config keys: {', '.join(unknown)}")
        return cls(**values)

    def rate_weight(self, step: int) -> float:
        """Weight of the rate term at ``step`` (0-based): 0 for the first ``rate_delay`` of the steps,
        then a ramp from 0 to 1 over ``rate_warmup`` of them."""
        delay, ramp = self.rate_delay * self.steps, self.rate_warmup * self.steps
        if step < delay:
            return 0.0
        return 1.0 if ramp <= 0 else min(1.0, (step - delay) / ramp)

    def lr_factor(self, step: int) -> float:
        """Learning-rate multiplier at ``step`` (0-based)."""
        return self.lr_decay if step >= int(self.lr_decay_at * self.steps) else 1.0
