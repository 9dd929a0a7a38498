"""The rate-distortion objective over a group of frames (I-frame then P-frames)."""
from __future__ import annotations

import torch
from torch import nn

from lwdvc.errors import ConfigError
from lwdvc.models.layers import flow_warp
from lwdvc.models.video_codec import VideoCodec
from lwdvc.train.synthetic_motion import endpoint_error, synthetic_pair

__all__ = ["RDObjective", "check_motion_stage"]


def check_motion_stage(codec: VideoCodec, stage: str) -> None:
    """Raise ConfigError unless ``codec``'s P-frame codec supports the motion pre-training stages."""
    inter = codec.inter
    if not (hasattr(inter, "forward_motion") and hasattr(inter, "optic_flow") and hasattr(inter, "motion_parameters")):
        raise ConfigError(f"stage {stage!r} needs a P-frame codec with a flow estimator and separate motion coding "
                         f"(dcvc_hem); the {codec.family} codec has none")


class _RDTally:
    """Collects ``lambda * MSE + rate_weight * bpp`` per coded frame and its means."""

    def __init__(self, lam: torch.Tensor, rate_weight: float) -> None:
        self.lam, self.rate_weight = lam, rate_weight
        self.losses: list[torch.Tensor] = []
        self.bpps: list[torch.Tensor] = []
        self.mses: list[torch.Tensor] = []

    def count(self, recon: torch.Tensor, target: torch.Tensor, bpp: torch.Tensor) -> None:
        """Add one frame per sample: recon / target [N, 3, H, W], bpp [N]."""
        mse = (recon.float() - target).square().mean(dim=(1, 2, 3))
        bpp = bpp.float()
        self.losses.append(self.lam * mse + self.rate_weight * bpp)
        self.bpps.append(bpp.detach())
        self.mses.append(mse.detach())

    def result(self) -> dict[str, torch.Tensor]:
        return {"loss": torch.stack(self.losses).mean(), "bpp": torch.stack(self.bpps).mean(),
                "mse": torch.stack(self.mses).mean()}


class RDObjective(nn.Module):
    """``mean over frames and samples of lambda[rate] * MSE + rate_weight * bpp`` for one codec.

    Wrapping the codec in this module lets ``DistributedDataParallel`` see the whole training
    forward as one call.

    Args:
        codec: the codec being trained.
        lambdas: RD lambda per rate point.
        stage: "intra" (I-frames only), "flow" (end-point error of the motion estimator on
            synthetic motion of frame 0), "motion" (warping loss + motion bpp on consecutive real
            frames, original frames as references), "inter" (I-frame codec run without gradient;
            only P-frame losses count) or "joint".
    """

    def __init__(self, codec: VideoCodec, lambdas: list[float], stage: str = "joint") -> None:
        super().__init__()
        if len(lambdas) != codec.num_rates:
            raise ConfigError(f"{len(lambdas)} lambdas for a codec with {codec.num_rates} rate points")
        self.codec = codec
        self.stage = stage
        #: weight of the bpp term (the training loop may ramp it up; see TrainConfig.rate_warmup)
        self.rate_weight = 1.0
        if stage in ("flow", "motion"):
            check_motion_stage(codec, stage)
        self.register_buffer("lambdas", torch.tensor(lambdas, dtype=torch.float32), persistent=False)

    def forward(self, group: torch.Tensor, rate: torch.Tensor) -> dict[str, torch.Tensor]:
        """Code a batch of frame groups.

        Args:
            group: [N, T, 3, H, W] in [0, 1]; frame 0 is the I-frame.
            rate: rate-point indices [N].

        Returns:
            ``{"loss": scalar, "bpp": scalar, "mse": scalar}`` (means over counted frames; in the
            "flow" stage ``mse`` is that of the reference warped by the estimated flow, and
            ``loss`` the mean end-point error in pixels).
        """
        if group.dim() != 5 or group.shape[2] != 3:
            raise ValueError(f"group must be [N, T, 3, H, W], got {tuple(group.shape)}")
        lam = self.lambdas[rate]
        if self.stage == "flow":
            return self._flow(group[:, 0])
        if self.stage == "motion":
            return self._motion(group, rate, lam)
        if self.stage == "residual":
            return self._residual(group, rate, lam)
        tally = _RDTally(lam, self.rate_weight)
        frame = group[:, 0]
        if self.stage == "inter":
            with torch.no_grad():
                intra = self.codec.code_intra(frame, rate)
        else:
            intra = self.codec.code_intra(frame, rate)
            tally.count(intra["recon"], frame, intra["bpp"])
        state = self.codec.reference_state(intra["recon"].clamp(0, 1))
        if self.stage != "intra":
            for t in range(1, group.shape[1]):
                out = self.codec.code_inter(group[:, t], state, rate)
                tally.count(out["recon"], group[:, t], out["bpp"])
                state = dict(out["state"], ref_frame=out["state"]["ref_frame"].clamp(0, 1))
        return tally.result()

    def _flow(self, reference: torch.Tensor) -> dict[str, torch.Tensor]:
        current, flow = synthetic_pair(reference)
        estimate = self.codec.inter.optic_flow(current, reference)
        epe = endpoint_error(estimate, flow)
        mse = (flow_warp(reference, estimate) - current).square().mean(dim=(1, 2, 3))
        return {"loss": epe.mean(), "bpp": torch.zeros(()), "mse": mse.detach().mean()}

    def _residual(self, group: torch.Tensor, rate: torch.Tensor, lam: torch.Tensor) -> dict[str, torch.Tensor]:
        tally = _RDTally(lam, self.rate_weight)
        for t in range(1, group.shape[1]):
            out = self.codec.code_inter(group[:, t], self.codec.reference_state(group[:, t - 1]), rate)
            tally.count(out["recon"], group[:, t], out["bpp"])
        return tally.result()

    def _motion(self, group: torch.Tensor, rate: torch.Tensor, lam: torch.Tensor) -> dict[str, torch.Tensor]:
        inter = self.codec.inter
        tally = _RDTally(lam, self.rate_weight)
        for t in range(1, group.shape[1]):
            out = inter.forward_motion(group[:, t], {"ref_frame": group[:, t - 1]},
                                       mv_y_q_scale=inter.mv_y_q_scale[rate])
            tally.count(out["warped"], group[:, t], out["bpp"])
        return tally.result()
