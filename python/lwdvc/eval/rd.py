"""Rate-distortion curves of codecs over test sequences, and BD metrics between two curves."""
from __future__ import annotations

from collections.abc import Sequence

from tqdm.auto import tqdm

from lwdvc.bdrate import bd_psnr, bd_rate
from lwdvc.data import PaddedSequence
from lwdvc.errors import BadArgumentError
from lwdvc.eval.sequence import GopSettings, code_sequence, code_sequence_via_file

__all__ = ["rd_curve", "bd_metrics", "curve_arrays"]


def rd_curve(codec, sequences: Sequence[PaddedSequence], rates: Sequence[int], settings: GopSettings,
             label: str = "codec", progress: bool = True, bitstream: bool = False) -> list[dict]:
    """One RD point per rate index: averages over sequences plus each sequence's result.

    Args:
        codec: a VideoCodec (variable rate: one model, several rate indices).
        sequences: padded test sequences.
        rates: rate-point indices to evaluate (e.g. ``range(codec.num_rates)``).
        settings: GOP size and frames per sequence.
        label: name shown on the progress bar.
        progress: show a tqdm bar over coded frames.
        bitstream: rates from real files (:func:`code_sequence_via_file`) instead of the estimate.

    Returns:
        ``[{"rate", "bpp", "psnr", "psnr_y", "ms_ssim", "sequences": [...]}, ...]``, the averages
        being means over sequences (each sequence's mean over its frames).
    """
    if not sequences:
        raise BadArgumentError("no test sequences to evaluate")
    if not rates:
        raise BadArgumentError("no rate points to evaluate")
    total = len(rates) * sum(min(len(s), settings.frames) for s in sequences)
    points = []
    with tqdm(total=total, desc=f"eval {label}", unit="frame", disable=not progress, dynamic_ncols=True) as bar:
        for rate in rates:
            code = code_sequence_via_file if bitstream else code_sequence
            results = [code(codec, seq, rate, settings, progress=bar.update) for seq in sequences]
            point = {"rate": int(rate)}
            for key in ("bpp", "psnr", "psnr_y", "ms_ssim"):
                point[key] = sum(r[key] for r in results) / len(results)
            point["sequences"] = results
            points.append(point)
            bar.set_postfix(bpp=f"{point['bpp']:.3f}", psnr=f"{point['psnr']:.2f}")
    return points


def curve_arrays(points: Sequence[dict], quality: str = "psnr") -> tuple[list[float], list[float]]:
    """(bpp list, quality list) of an RD curve."""
    return [p["bpp"] for p in points], [p[quality] for p in points]


def bd_metrics(anchor: Sequence[dict], test: Sequence[dict]) -> dict[str, float | None]:
    """BD-rate (%) and BD-PSNR (dB) of ``test`` against ``anchor`` for RGB PSNR and PSNR-Y.

    A metric the curves do not support (fewer than 2 points, no overlap) is None, with the
    reason under ``"<metric>_error"``.
    """
    out: dict[str, float | None] = {}
    for quality, suffix in (("psnr", ""), ("psnr_y", "_y")):
        rate_a, q_a = curve_arrays(anchor, quality)
        rate_t, q_t = curve_arrays(test, quality)
        for name, function in (("bd_rate", bd_rate), ("bd_psnr", bd_psnr)):
            key = name + suffix
            try:
                out[key] = function(rate_a, q_a, rate_t, q_t)
            except ValueError as error:
                out[key] = None
                out[key + "_error"] = str(error)
    return out
