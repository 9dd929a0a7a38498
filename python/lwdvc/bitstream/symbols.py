"""Entropy coding of integer latents with a range coder (``constriction``'s queue coder).

Two probability models cover the codecs' latents:

* **Laplace** or **Gaussian** with a per-symbol scale and mean 0 (the latents' residuals after
  the prior's mean is subtracted): DCVC-HEM's contextual and motion latents (Laplace) and its
  I-frame latent (Gaussian).
* **factorized**: one probability table per channel, built once per model from its learnt CDF
  (:class:`FactorizedTable`): the hyper latents.

The range coder is a queue: symbols are decoded in the order they were encoded, which is the
causal order of the priors (hyper latent, then checkerboard pass 0, then pass 1). Every model
covers the integers ``[-radius, radius]``; a symbol beyond is coded as the edge value and its
excess magnitude follows at the end of the same call as a 32-bit integer (two uniform 16-bit
symbols), so no latent value is ever clipped.

Determinism: the coder's models are built from float64 parameters with fixed-point arithmetic
inside ``constriction``; encoder and decoder agree exactly as long as they are handed the same
scales, which the callers guarantee by computing them with the same code on the same values.
"""
from __future__ import annotations

import numpy as np
import torch

from lwdvc.errors import InputFileError

__all__ = ["BitstreamError", "FactorizedTable", "CONTINUOUS_RADIUS", "MIN_SCALE", "SymbolReader", "SymbolWriter"]

#: Symbols of the Laplace and Gaussian models are coded within [-CONTINUOUS_RADIUS,
#: CONTINUOUS_RADIUS] (plus escapes).
CONTINUOUS_RADIUS = 1023
#: Scales are clamped to at least these, the bounds of the rate estimates
#: (``laplace_likelihood``, ``gaussian_likelihood``).
MIN_SCALE = {"laplace": 1e-5, "gaussian": 0.11}


class BitstreamError(InputFileError):
    """A bitstream that cannot be decoded: truncated, corrupted, of another model or version."""


def _constriction():
    try:
        import constriction
    except ImportError as error:  # pragma: no cover - a dependency of the package
        raise ImportError("entropy coding needs the `constriction` package: pip install constriction") from error
    return constriction


def _as_int_array(symbols: torch.Tensor, name: str) -> np.ndarray:
    if not isinstance(symbols, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(symbols).__name__}")
    if symbols.is_floating_point():
        rounded = torch.round(symbols)
        if not torch.equal(rounded, symbols):
            raise ValueError(f"{name} must hold integers, got non-integer values")
        symbols = rounded
    if symbols.numel() and not torch.isfinite(symbols.double()).all():
        raise ValueError(f"{name} holds NaN or infinity")
    return symbols.detach().cpu().reshape(-1).to(torch.int64).numpy()


def _float64(values: torch.Tensor, name: str) -> torch.Tensor:
    """``values`` flattened to float64 on the CPU; TypeError / ValueError name what is wrong."""
    if not isinstance(values, torch.Tensor) or not values.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {type(values).__name__}")
    flat = values.detach().cpu().reshape(-1).to(torch.float64)
    if flat.numel() and not torch.isfinite(flat).all():
        raise ValueError(f"{name} hold NaN or infinity")
    return flat


def _as_scales(scales: torch.Tensor, kind: str, min_scale: float | None = None) -> np.ndarray:
    values = _float64(scales, "scales")
    bound = MIN_SCALE[kind] if min_scale is None else float(min_scale)
    if not bound > 0:
        raise ValueError(f"min_scale must be > 0, got {min_scale}")
    return np.ascontiguousarray(values.clamp_min(bound).numpy())


def _as_means(means: torch.Tensor | None, scale_values: np.ndarray) -> np.ndarray:
    if means is None:
        return np.zeros_like(scale_values)
    values = _float64(means, "means")
    if values.numel() != scale_values.size:
        raise ValueError(f"means ({values.numel()}) and scales ({scale_values.size}) differ in size")
    return np.ascontiguousarray(values.numpy())


def _continuous_model(c, kind: str):
    """The coder's quantised Laplace or Gaussian over [-CONTINUOUS_RADIUS, CONTINUOUS_RADIUS]."""
    family = c.stream.model.QuantizedLaplace if kind == "laplace" else c.stream.model.QuantizedGaussian
    return family(-CONTINUOUS_RADIUS, CONTINUOUS_RADIUS)


def _split_escapes(values: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(values clipped to [-radius, radius], excess magnitudes of the clipped ones)."""
    clipped = np.clip(values, -radius, radius)
    excess = np.abs(values[np.abs(values) >= radius]) - radius
    if excess.size and int(excess.max()) >= 2 ** 32:
        raise ValueError(f"a latent value of magnitude {int(np.abs(values).max())} is too large to code")
    return clipped, excess


class FactorizedTable:
    """Per-channel probability tables of a factorized prior over the integers [-radius, radius].

    Args:
        probabilities: [C, 2 * radius + 1] non-negative masses (float64; rows need not sum to 1,
            every value gets at least the coder's smallest probability).
        radius: the largest magnitude coded without an escape.
    """

    def __init__(self, probabilities: np.ndarray, radius: int) -> None:
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if probabilities.ndim != 2 or probabilities.shape[1] != 2 * radius + 1:
            raise ValueError(f"probabilities must be [C, {2 * radius + 1}], got {probabilities.shape}")
        if not np.isfinite(probabilities).all() or (probabilities < 0).any():
            raise ValueError("probabilities must be finite and non-negative")
        self.probabilities = np.ascontiguousarray(probabilities)
        self.radius = int(radius)

    @property
    def channels(self) -> int:
        return self.probabilities.shape[0]

    def rows(self, per_channel: int) -> np.ndarray:
        """The table of every symbol of a channel-major sequence, ``per_channel`` symbols per
        channel: [C * per_channel, 2 * radius + 1]."""
        return np.repeat(self.probabilities, per_channel, axis=0)

    @classmethod
    def from_likelihood(cls, likelihood, channels: int, radius: int = 63) -> FactorizedTable:
        """Tabulate ``likelihood(values [1, C, 1, K]) -> masses [1, C, 1, K]`` at the integers.

        ``likelihood`` is a model's unit-bin mass function (for example
        ``lambda v: factorized_likelihood(v, estimator)``); it is evaluated once, in float64 when
        the caller hands a float64 copy of the estimator.
        """
        grid = torch.arange(-radius, radius + 1, dtype=torch.float64)
        values = grid.view(1, 1, 1, -1).expand(1, channels, 1, grid.numel()).contiguous()
        with torch.no_grad():
            masses = likelihood(values)
        if tuple(masses.shape) != tuple(values.shape):
            raise ValueError(f"likelihood returned shape {tuple(masses.shape)} for {tuple(values.shape)}")
        return cls(masses.reshape(channels, -1).double().clamp_min(0).cpu().numpy(), radius)


class SymbolWriter:
    """Collects symbols in coding order; :meth:`getvalue` returns the compressed bytes."""

    def __init__(self) -> None:
        self._c = _constriction()
        self._coder = self._c.stream.queue.RangeEncoder()

    def laplace(self, symbols: torch.Tensor, scales: torch.Tensor) -> None:
        """Code integer ``symbols`` under Laplace(0, scales) (any equal shapes)."""
        self._continuous("laplace", symbols, scales)

    def gaussian(self, symbols: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None = None,
                 min_scale: float | None = None) -> None:
        """Code integer ``symbols`` under N(means, scales) (means 0 when None; any equal shapes;
        scales bounded below by ``min_scale``, default 0.11)."""
        self._continuous("gaussian", symbols, scales, means, min_scale)

    def _continuous(self, kind: str, symbols: torch.Tensor, scales: torch.Tensor,
                    means: torch.Tensor | None = None, min_scale: float | None = None) -> None:
        values = _as_int_array(symbols, "symbols")
        scale_values = _as_scales(scales, kind, min_scale)
        mean_values = _as_means(means, scale_values)
        if values.size != scale_values.size:
            raise ValueError(f"symbols ({values.size}) and scales ({scale_values.size}) differ in size")
        if not values.size:
            return
        clipped, excess = _split_escapes(values, CONTINUOUS_RADIUS)
        self._coder.encode(clipped.astype(np.int32), _continuous_model(self._c, kind), mean_values, scale_values)
        self._encode_excess(excess)

    def factorized(self, symbols: torch.Tensor, table: FactorizedTable) -> None:
        """Code integer ``symbols`` [N, C, H, W] with channel c's table."""
        if symbols.dim() != 4 or symbols.shape[1] != table.channels:
            raise ValueError(f"symbols must be [N, {table.channels}, H, W], got {tuple(symbols.shape)}")
        values = _as_int_array(symbols.permute(1, 0, 2, 3), "symbols")  # channel-major
        if not values.size:
            return
        clipped, excess = _split_escapes(values, table.radius)
        model = self._c.stream.model.Categorical(perfect=False)
        self._coder.encode((clipped + table.radius).astype(np.int32), model, table.rows(values.size // table.channels))
        self._encode_excess(excess)

    def _encode_excess(self, excess: np.ndarray) -> None:
        if not excess.size:
            return
        words = excess.astype(np.uint64)
        halves = np.stack([(words >> 16) & 0xFFFF, words & 0xFFFF], axis=1).reshape(-1).astype(np.int32)
        self._coder.encode(halves, self._c.stream.model.Uniform(65536))

    def getvalue(self) -> bytes:
        """The compressed symbols (a whole number of 32-bit words, little-endian)."""
        return np.asarray(self._coder.get_compressed(), dtype="<u4").tobytes()


class SymbolReader:
    """Decodes what a :class:`SymbolWriter` wrote, call by call in the same order.

    Raises :class:`BitstreamError` when the data run out or cannot be decoded.
    """

    def __init__(self, data: bytes) -> None:
        if len(data) % 4:
            raise BitstreamError(f"entropy-coded data must be whole 32-bit words, got {len(data)} bytes")
        self._c = _constriction()
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        self._coder = self._c.stream.queue.RangeDecoder(words)

    def _decode(self, model, *params) -> np.ndarray:
        try:
            return np.asarray(self._coder.decode(model, *params), dtype=np.int64)
        except Exception as error:  # the coder reports malformed data with its own exceptions
            raise BitstreamError(f"entropy-coded data cannot be decoded ({error})") from None

    def laplace(self, scales: torch.Tensor) -> torch.Tensor:
        """Symbols coded by :meth:`SymbolWriter.laplace` with these scales (same shape, float32)."""
        return self._continuous("laplace", scales)

    def gaussian(self, scales: torch.Tensor, means: torch.Tensor | None = None,
                 min_scale: float | None = None) -> torch.Tensor:
        """Symbols coded by :meth:`SymbolWriter.gaussian` with these parameters (float32)."""
        return self._continuous("gaussian", scales, means, min_scale)

    def _continuous(self, kind: str, scales: torch.Tensor, means: torch.Tensor | None = None,
                    min_scale: float | None = None) -> torch.Tensor:
        scale_values = _as_scales(scales, kind, min_scale)
        mean_values = _as_means(means, scale_values)
        if not scale_values.size:
            return torch.zeros(scales.shape)
        values = self._decode(_continuous_model(self._c, kind), mean_values, scale_values)
        values = self._apply_excess(values, CONTINUOUS_RADIUS)
        return torch.from_numpy(values).to(torch.float32).reshape(scales.shape)

    def factorized(self, shape: tuple[int, int, int, int], table: FactorizedTable) -> torch.Tensor:
        """Symbols [N, C, H, W] coded by :meth:`SymbolWriter.factorized` (float32)."""
        n, c, h, w = shape
        if c != table.channels:
            raise ValueError(f"shape has {c} channels, the table {table.channels}")
        count = n * c * h * w
        if not count:
            return torch.zeros(shape)
        values = self._decode(self._c.stream.model.Categorical(perfect=False), table.rows(count // c)) - table.radius
        values = self._apply_excess(values, table.radius)
        return torch.from_numpy(values).to(torch.float32).reshape(c, n, h, w).permute(1, 0, 2, 3).contiguous()

    def _apply_excess(self, values: np.ndarray, radius: int) -> np.ndarray:
        edges = np.flatnonzero(np.abs(values) >= radius)
        if not edges.size:
            return values
        halves = self._decode(self._c.stream.model.Uniform(65536), 2 * edges.size)
        excess = (halves[0::2].astype(np.int64) << 16) | halves[1::2].astype(np.int64)
        values = values.copy()
        values[edges] = np.sign(values[edges]) * (radius + excess)
        return values
