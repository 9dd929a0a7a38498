"""The .lwdv container: round trip, atomic writes, and clear errors for damaged files."""
import os

import pytest

from lwdvc.bitstream.container import FORMAT_VERSION, MAGIC, BitstreamWriter, read_bitstream
from lwdvc.bitstream.symbols import BitstreamError

HEADER = {"format": "lwdvc-video", "frames": 3, "height": 10, "width": 12}
PAYLOADS = [("I", b"\x01\x02\x03\x04" * 5), ("P", b""), ("P", b"\xff" * 8)]


def _write(path):
    with BitstreamWriter(path, HEADER) as writer:
        for kind, payload in PAYLOADS:
            writer.add(kind, payload)
    return path


def test_round_trip(tmp_path):
    header, frames = read_bitstream(_write(tmp_path / "a.lwdv"))
    assert header == HEADER
    assert [(f.kind, f.payload) for f in frames] == PAYLOADS
    assert os.listdir(tmp_path) == ["a.lwdv"]


def test_an_interrupted_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "a.lwdv"
    with pytest.raises(KeyboardInterrupt):
        with BitstreamWriter(path, HEADER) as writer:
            writer.add("I", b"1234")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
    _write(path)
    before = path.read_bytes()
    with pytest.raises(RuntimeError):
        with BitstreamWriter(path, HEADER) as writer:
            raise RuntimeError("stop")
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["a.lwdv"]


def test_the_announced_frame_count_is_enforced(tmp_path):
    with pytest.raises(ValueError, match="2 frames written, the header announces 3"):
        with BitstreamWriter(tmp_path / "a.lwdv", HEADER) as writer:
            writer.add("I", b"")
            writer.add("P", b"")
    assert os.listdir(tmp_path) == []
    writer = BitstreamWriter(tmp_path / "b.lwdv", {"frames": 1})
    writer.add("I", b"")
    with pytest.raises(ValueError, match="no more"):
        writer.add("P", b"")
    writer.abort()
    with pytest.raises(ValueError, match="kind"):
        BitstreamWriter(tmp_path / "c.lwdv", {"frames": 1}).add("B", b"")


def test_truncation_at_every_length_is_reported(tmp_path):
    data = _write(tmp_path / "a.lwdv").read_bytes()
    for length in range(len(data)):
        cut = tmp_path / "cut.lwdv"
        cut.write_bytes(data[:length])
        with pytest.raises(BitstreamError, match="truncated|not an lwdvc bitstream|corrupted"):
            read_bitstream(cut)


def test_every_flipped_byte_is_caught(tmp_path):
    data = bytearray(_write(tmp_path / "a.lwdv").read_bytes())
    for index in range(len(data)):
        damaged = bytearray(data)
        damaged[index] ^= 0x40
        path = tmp_path / "bad.lwdv"
        path.write_bytes(bytes(damaged))
        with pytest.raises(BitstreamError):
            read_bitstream(path)


def test_unknown_version_and_foreign_files_are_named(tmp_path):
    data = bytearray(_write(tmp_path / "a.lwdv").read_bytes())
    data[len(MAGIC)] = FORMAT_VERSION + 1
    (tmp_path / "v.lwdv").write_bytes(bytes(data))
    with pytest.raises(BitstreamError, match=f"version {FORMAT_VERSION + 1}"):
        read_bitstream(tmp_path / "v.lwdv")
    (tmp_path / "x.lwdv").write_bytes(b"RIFF0000WAVEfmt ")
    with pytest.raises(BitstreamError, match="not an lwdvc bitstream"):
        read_bitstream(tmp_path / "x.lwdv")
    with pytest.raises(FileNotFoundError):
        read_bitstream(tmp_path / "missing.lwdv")
