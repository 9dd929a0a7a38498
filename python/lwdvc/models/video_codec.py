"""A video codec as one module: an I-frame codec plus a P-frame codec with a common interface.

Training, evaluation, checkpoints and pruning all see the same object: :class:`VideoCodec` holds
``intra`` (I-frames) and ``inter`` (P-frames) and codes frames through two methods whose inputs
and outputs do not depend on the codec family:

* ``code_intra(frame, rate)`` -> ``{"recon", "bpp"}``
* ``code_inter(frame, state, rate)`` -> ``{"recon", "bpp", "state"}``

``rate`` is a rate-point index tensor [N] (one per sample). Variable-rate families (DCVC-HEM)
pick their learnt quantisation scales with it; fixed-rate families (DCVC, FVC, each with the
scale-hyperprior I-frame codec) have one rate point, index 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lwdvc.errors import ConfigError
from lwdvc.models.zoo import build

__all__ = ["FAMILIES", "FRAME_SKIP_OF", "Family", "MAX_ANCHORS", "MAX_WIDTH", "Q_SCALE_RANGE", "VideoCodec",
           "check_codec_config", "spread_q_scales", "weights_fit"]


@dataclass(frozen=True)
class Family:
    """A supported (I-frame codec, P-frame codec) pair.

    Attributes:
        intra: registry name of the I-frame codec.
        inter: registry name of the P-frame codec.
        variable_rate: one model covers several rate points through learnt q-scales.
    """

    intra: str
    inter: str
    variable_rate: bool


FAMILIES: dict[str, Family] = {
    "dcvc_hem": Family("dcvc_hem_intra", "dcvc_hem", variable_rate=True),
    "dcvc_hem_skip": Family("dcvc_hem_intra", "dcvc_hem_skip", variable_rate=True),
    "dcvc": Family("hyperprior", "dcvc", variable_rate=False),
    "fvc": Family("hyperprior", "fvc", variable_rate=False),
}

#: Frame-skip family of a family whose weights it takes unchanged (same keys and shapes).
FRAME_SKIP_OF = {"dcvc_hem": "dcvc_hem_skip"}


def weights_fit(source: dict[str, Any], target: dict[str, Any]) -> str | None:
    """How weights of codec config ``source`` go into a codec of config ``target``.

    Returns:
        "same" (equal configs), "to_frame_skip" (a family's weights into its frame-skip family,
        all else equal: the P-frame codec then starts as a motion-compensated copy) or None.
    """
    if source == target:
        return "same"
    if FRAME_SKIP_OF.get(source.get("family")) == target.get("family") and \
            {**source, "family": target.get("family")} == target:
        return "to_frame_skip"
    return None


#: Largest width factor and number of rate points a codec config may ask for: beyond them the
#: layers would take absurd memory (width 1 is the official size, 4 the official rate points).
MAX_WIDTH = 4.0
MAX_ANCHORS = 64


def _number(config: dict[str, Any], key: str, default: Any, integral: bool = False) -> float | int:
    """``config[key]`` as a finite number (a JSON number or numeric string), else ConfigError."""
    value = config.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"codec {key} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise ConfigError(f"codec {key} must be a finite number, got {value!r}")
    if integral:
        if not number.is_integer():
            raise ConfigError(f"codec {key} must be a whole number, got {value!r}")
        return int(number)
    return number


def check_codec_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise a codec config ``{"family", "width", "intra_width", "anchors"}``.

    Returns:
        A new JSON-able dict with every key present.

    Raises:
        ConfigError: unknown family; a width that is not a finite number in (0, MAX_WIDTH]; a
            number of rate points that is not a whole number in [1, MAX_ANCHORS].
    """
    if not isinstance(config, dict):
        raise ConfigError(f"a codec config must be a mapping, got {type(config).__name__}")
    family = config.get("family")
    if not isinstance(family, str) or family not in FAMILIES:
        raise ConfigError(f"unknown codec family {family!r}; choose one of {', '.join(sorted(FAMILIES))}")
    width = _number(config, "width", 1.0)
    intra_width = _number(config, "intra_width", width)
    if not (0 < width <= MAX_WIDTH and 0 < intra_width <= MAX_WIDTH):
        raise ConfigError(f"codec widths must be > 0 and at most {MAX_WIDTH:g}, got width={width}, "
                          f"intra_width={intra_width}")
    anchors = _number(config, "anchors", 4, integral=True) if FAMILIES[family].variable_rate else 1
    if not 1 <= anchors <= MAX_ANCHORS:
        raise ConfigError(f"anchors must be in [1, {MAX_ANCHORS}], got {anchors}")
    return {"family": family, "width": width, "intra_width": intra_width, "anchors": anchors}


#: Initial quantisation scales of the lowest and highest rate point of a fresh variable-rate model.
Q_SCALE_RANGE = (1.5, 0.5)


def spread_q_scales(codec: VideoCodec, anchors: int) -> None:
    """Start the rate points apart: q-scales geometric from 1.5 (rate 0) down to 0.5 (last rate).

    The model constructors set every anchor to 1, so all rate points would start identical and
    separate only slowly; a geometric spread gives distinct rates from the first step.
    """
    high, low = Q_SCALE_RANGE
    values = torch.tensor([high * (low / high) ** (i / max(1, anchors - 1)) for i in range(anchors)])
    with torch.no_grad():
        for parameter in (codec.intra.q_scale, codec.inter.mv_y_q_scale, codec.inter.y_q_scale):
            parameter.copy_(values.reshape(parameter.shape))


class VideoCodec(nn.Module):
    """I-frame codec (``intra``) + P-frame codec (``inter``) of one family.

    Args:
        family: a key of :data:`FAMILIES` ("dcvc_hem", "dcvc", "fvc").
        width: channel width factor of the P-frame codec.
        intra_width: width factor of the I-frame codec (default: ``width``).
        anchors: number of rate points of a variable-rate family (4 officially).
    """

    def __init__(self, family: str = "dcvc_hem", width: float = 1.0,
                 intra_width: float | None = None, anchors: int = 4) -> None:
        super().__init__()
        self.config = check_codec_config({"family": family, "width": width,
                                          "intra_width": width if intra_width is None else intra_width,
                                          "anchors": anchors})
        spec = FAMILIES[family]
        self.family = family
        self.variable_rate = spec.variable_rate
        if spec.variable_rate:
            self.intra = build(spec.intra, width=self.config["intra_width"], anchor_num=self.config["anchors"])
            self.inter = build(spec.inter, width=self.config["width"], anchor_num=self.config["anchors"])
            spread_q_scales(self, self.config["anchors"])
        else:
            self.intra = build(spec.intra, width=self.config["intra_width"])
            self.inter = build(spec.inter, width=self.config["width"])

    @property
    def num_rates(self) -> int:
        """Rate points one model covers (anchors of a variable-rate family, else 1)."""
        return self.config["anchors"]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> VideoCodec:
        """Build from a dict written by :attr:`config`."""
        config = check_codec_config(config)
        return cls(config["family"], config["width"], config["intra_width"], config["anchors"])

    def _check_rate(self, rate: torch.Tensor, batch: int) -> torch.Tensor:
        if not isinstance(rate, torch.Tensor) or rate.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"rate must be an integer tensor [N], got {rate!r}")
        if rate.shape != (batch,):
            raise ValueError(f"rate must have shape [{batch}], got {tuple(rate.shape)}")
        if rate.numel() and (int(rate.min()) < 0 or int(rate.max()) >= self.num_rates):
            raise ValueError(f"rate indices must be in [0, {self.num_rates - 1}], got {rate.tolist()}")
        return rate.long()

    def code_intra(self, frame: torch.Tensor, rate: torch.Tensor, quant: str = "noise") -> dict:
        """Code I-frames.

        Args:
            frame: [N, 3, H, W] in [0, 1].
            rate: rate-point indices [N].
            quant: "noise" (training), "ste" or "round" (evaluation).

        Returns:
            ``{"recon": [N, 3, H, W] (not clamped), "bpp": [N]}``.
        """
        rate = self._check_rate(rate, frame.shape[0])
        if self.variable_rate:
            out = self.intra(frame, q_scale=self.intra.q_scale[rate], quant=quant)
        else:
            out = self.intra(frame, quant=quant)
        return {"recon": out["x_hat"], "bpp": out["bpp"]}

    def code_inter(self, frame: torch.Tensor, state: dict, rate: torch.Tensor, quant: str = "noise") -> dict:
        """Code P-frames against the decoded state of the previous frame.

        Args:
            frame: [N, 3, H, W] in [0, 1].
            state: ``{"ref_frame": [N, 3, H, W]}`` after an I-frame, or the ``state`` returned by
                the previous call (DCVC-HEM keeps its decoded picture buffer there).
            rate: rate-point indices [N].
            quant: "noise", "ste" or "round".

        Returns:
            ``{"recon": [N, 3, H, W] (not clamped), "bpp": [N], "state": dict}``.
        """
        args, kwargs = self.inter_inputs(frame, state, rate, quant)
        out = self.inter(*args, **kwargs)
        next_state = dict(out["dpb"]) if self.variable_rate else {"ref_frame": out["recon_image"]}
        return {"recon": out["recon_image"], "bpp": out["bpp"], "state": next_state}

    def inter_inputs(self, frame: torch.Tensor, state: dict, rate: torch.Tensor,
                     quant: str = "noise") -> tuple[tuple, dict]:
        """(args, kwargs) of ``self.inter(...)`` for :meth:`code_inter` (used for distillation,
        where a teacher must see the same inputs with its own quantisation scales)."""
        rate = self._check_rate(rate, frame.shape[0])
        if not isinstance(state, dict) or not isinstance(state.get("ref_frame"), torch.Tensor):
            raise ValueError("state must be a dict holding the reference frame under 'ref_frame'")
        if self.variable_rate:
            return (frame, state), {"mv_y_q_scale": self.inter.mv_y_q_scale[rate],
                                    "y_q_scale": self.inter.y_q_scale[rate], "quant": quant}
        return (state["ref_frame"], frame), {"quant": quant}

    @staticmethod
    def reference_state(recon: torch.Tensor) -> dict:
        """State after an I-frame: the reconstruction as reference."""
        return {"ref_frame": recon}

    def rate_scales(self) -> list[dict[str, float]]:
        """The learnt quantisation scales per rate point (variable-rate families), for reports."""
        if not self.variable_rate:
            return [{}]
        with torch.no_grad():
            return [{"intra_q_scale": float(self.intra.q_scale[i]),
                     "mv_y_q_scale": float(self.inter.mv_y_q_scale[i]),
                     "y_q_scale": float(self.inter.y_q_scale[i])} for i in range(self.num_rates)]
