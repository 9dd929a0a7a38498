"""The ``.lwdv`` file: a versioned header and one checksummed record per coded frame.

Layout (integers little-endian)::

    magic        8 bytes  b"LWDV\\x89\\r\\n\\x1a"
    version      u16      FORMAT_VERSION
    header size  u32
    header       UTF-8 JSON (codec family, model name and fingerprint, frame size, frame
                 count, rate point, intra period, ...)
    header crc   u32      CRC-32 of the header bytes
    then per frame:
    kind         u8       0 = I-frame, 1 = P-frame
    size         u32      payload bytes
    crc          u32      CRC-32 of kind and payload
    payload      the frame's entropy-coded symbols

Nothing in a file is executed: the header is JSON and the payloads are integers. A writer
builds the file under a temporary name and renames it only when every frame is written, so an
interrupted encode never leaves a partial file under the target name.
"""
from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lwdvc.atomic_file import AtomicFile
from lwdvc.bitstream.symbols import BitstreamError

__all__ = ["FORMAT_VERSION", "FRAME_KINDS", "MAGIC", "BitstreamWriter", "CodedFrame", "read_bitstream"]

MAGIC = b"LWDV\x89\r\n\x1a"
FORMAT_VERSION = 1
FRAME_KINDS = ("I", "P")
_PREFIX = struct.Struct("<HI")
_FRAME = struct.Struct("<BII")
_CRC = struct.Struct("<I")
#: Largest header a reader accepts (a corrupted size field must not make it allocate gigabytes).
MAX_HEADER_BYTES = 1 << 20


@dataclass(frozen=True)
class CodedFrame:
    """One frame record: ``kind`` "I" or "P" and its entropy-coded ``payload``."""

    kind: str
    payload: bytes


def _frame_crc(kind_code: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(bytes((kind_code,))))


class BitstreamWriter:
    """Writes a ``.lwdv`` file frame by frame; the file appears at ``path`` on :meth:`close`.

    Args:
        path: target file.
        header: JSON-serialisable dict; ``header["frames"]`` is the number of frames that must
            be added before :meth:`close`.

    Use as a context manager: leaving the block with an exception removes the temporary file
    and leaves ``path`` as it was.
    """

    def __init__(self, path: str | os.PathLike, header: dict[str, Any]) -> None:
        self.path = os.fspath(path)
        self.expected = int(header["frames"])
        text = json.dumps(header, sort_keys=True).encode("utf-8")
        self._file = AtomicFile(self.path, suffix=".lwdv")
        self._file.write(MAGIC + _PREFIX.pack(FORMAT_VERSION, len(text)) + text + _CRC.pack(zlib.crc32(text)))
        self.frames = 0
        self.bytes = self._file.tell()

    def add(self, kind: str, payload: bytes) -> None:
        """Append one frame ("I" or "P") and its payload."""
        if kind not in FRAME_KINDS:
            raise ValueError(f"frame kind must be one of {FRAME_KINDS}, got {kind!r}")
        if self.frames >= self.expected:
            raise ValueError(f"the header announces {self.expected} frames; no more can be added")
        code = FRAME_KINDS.index(kind)
        self._file.write(_FRAME.pack(code, len(payload), _frame_crc(code, payload)) + payload)
        self.frames += 1
        self.bytes += _FRAME.size + len(payload)

    def close(self) -> str:
        """Finish the file and move it to ``path`` (all announced frames must be there)."""
        if self.frames != self.expected:
            self.abort()
            raise ValueError(f"{self.frames} frames written, the header announces {self.expected}")
        return self._file.commit()

    def abort(self) -> None:
        """Drop the temporary file (the target is left untouched)."""
        self._file.abort()

    def __enter__(self) -> BitstreamWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def read_bitstream(path: str | os.PathLike) -> tuple[dict[str, Any], list[CodedFrame]]:
    """Read and check a whole ``.lwdv`` file.

    Returns:
        (header dict, frames in coding order).

    Raises:
        BitstreamError: not a ``.lwdv`` file, an unknown version, a truncated or corrupted
            header or frame (naming which), too few or too many frames.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        data = file.read()
    if not data.startswith(MAGIC):
        raise BitstreamError(f"{path} is not an lwdvc bitstream (no LWDV signature)")
    offset = len(MAGIC)
    if len(data) < offset + _PREFIX.size:
        raise BitstreamError(f"{path} is truncated: it ends inside the file header")
    version, header_size = _PREFIX.unpack_from(data, offset)
    if version != FORMAT_VERSION:
        raise BitstreamError(f"{path} has bitstream version {version}; this lwdvc reads version {FORMAT_VERSION}")
    offset += _PREFIX.size
    if header_size > MAX_HEADER_BYTES or len(data) < offset + header_size + _CRC.size:
        raise BitstreamError(f"{path} is truncated or corrupted: its header does not fit in the file")
    text = data[offset:offset + header_size]
    offset += header_size
    (crc,) = _CRC.unpack_from(data, offset)
    offset += _CRC.size
    if zlib.crc32(text) != crc:
        raise BitstreamError(f"{path} is corrupted: the header's checksum does not match")
    try:
        header = json.loads(text.decode("utf-8"))
        expected = int(header["frames"])
    except (ValueError, KeyError, TypeError) as error:
        raise BitstreamError(f"{path} has an unreadable header ({error})") from None
    frames = list(_frames(data, offset, path))
    if len(frames) < expected:
        raise BitstreamError(f"{path} is truncated: {len(frames)} of the {expected} frames its header announces")
    if len(frames) > expected:
        raise BitstreamError(f"{path} is corrupted: {len(frames)} frames, its header announces {expected}")
    return header, frames


def _frames(data: bytes, offset: int, path: str) -> Iterator[CodedFrame]:
    index = 0
    while offset < len(data):
        if len(data) < offset + _FRAME.size:
            raise BitstreamError(f"{path} is truncated: it ends inside the record of frame {index}")
        code, size, crc = _FRAME.unpack_from(data, offset)
        offset += _FRAME.size
        if len(data) < offset + size:
            raise BitstreamError(f"{path} is truncated: frame {index} needs {size} bytes, "
                                 f"{len(data) - offset} are left")
        payload = data[offset:offset + size]
        offset += size
        if code >= len(FRAME_KINDS) or _frame_crc(code, payload) != crc:
            raise BitstreamError(f"{path} is corrupted: frame {index}'s checksum does not match")
        yield CodedFrame(FRAME_KINDS[code], payload)
        index += 1
