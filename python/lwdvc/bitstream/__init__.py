"""Real bitstreams: entropy coding of the codecs' latents and the ``.lwdv`` file format."""
from __future__ import annotations

from lwdvc.bitstream.symbols import BitstreamError, FactorizedTable, SymbolReader, SymbolWriter

__all__ = ["BitstreamError", "FactorizedTable", "SymbolReader", "SymbolWriter"]
