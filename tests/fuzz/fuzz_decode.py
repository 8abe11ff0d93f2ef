#!/usr/bin/env python3
"""Fuzz target: the vectorized header decoder (tracker.decode.decode), run by atheris.

    .venv/bin/python tests/fuzz/fuzz_decode.py CORPUS_DIR [SEED_DIR ...] [libFuzzer flags]

Input layout: one byte for the link type (an index into LINKTYPES, or else the
byte itself as a link type, mostly unknown ones), then frames, each as a
big-endian 16-bit captured length, a 16-bit wire length and the bytes (the
last frame takes what is left). fuzz_contract.check_decode decodes the frames
with different bytes between them, in two batches and without the compiled pass
over plain frames (decode/plain.py): any difference, any exception or a broken
PacketBatch invariant is a crash.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz_main

fuzz_main.setup_path()
if __name__ == "__main__":
    fuzz_main.instrument(["fuzz_contract"])

import fuzz_contract as fc

# Every link type tracker/decode/link.py decodes (tracker/frames.py names them).
LINKTYPES = (1, 0, 9, 12, 14, 50, 101, 104, 108, 113, 192, 228, 229, 276)
MAX_FRAMES = 64  # bounds the work of one input


def split(data: bytes) -> tuple[int, list[bytes], list[int]]:
    """(link type, frames, wire lengths) from one fuzz input (see the module docstring)."""
    link = LINKTYPES[data[0]] if data[0] < len(LINKTYPES) else data[0]
    frames: list[bytes] = []
    wire: list[int] = []
    pos = 1
    while pos < len(data) and len(frames) < MAX_FRAMES:
        head = data[pos:pos + 4].ljust(4, b"\0")
        caplen, wlen = int.from_bytes(head[:2], "big"), int.from_bytes(head[2:], "big")
        frames.append(data[pos + 4:pos + 4 + caplen])
        wire.append(wlen)
        pos += 4 + caplen
    return link, frames, wire


def join(link: int, frames: list[bytes], wire: list[int] | None = None) -> bytes:
    """The fuzz input that ``split`` turns back into these frames (for the seed builder)."""
    sel = LINKTYPES.index(link) if link in LINKTYPES else link
    wire = wire or [len(f) for f in frames]
    return bytes([sel]) + b"".join(len(f).to_bytes(2, "big") + (w & 0xFFFF).to_bytes(2, "big")
                                   + f for f, w in zip(frames, wire, strict=True))


def one_input(data: bytes) -> None:
    """Decode one fuzz input's frames; a ContractViolation or other exception is a crash."""
    if not data:
        return
    link, frames, wire = split(data)
    fc.check_decode(frames, link, wire)


if __name__ == "__main__":
    fuzz_main.fuzz(one_input)
