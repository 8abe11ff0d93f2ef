"""Shared helpers for the capture reader tests: read everything, flatten frames."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from tracker.frames import FrameBatch
from tracker.sources.files import CaptureReader, open_capture


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def read_all(source: Any, **kw: Any) -> tuple[CaptureReader, list[FrameBatch]]:
    """Open, read every batch, close; warnings are raised as errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with open_capture(source, **kw) as cap:
            return cap, list(cap)


def flat(batches: list[FrameBatch]) -> list[tuple[bytes, int, int, int, int]]:
    """Every frame as (bytes, ts_ns, wire_len, linktype, record number)."""
    out = []
    for b in batches:
        for i in range(len(b)):
            s, c = int(b.start[i]), int(b.caplen[i])
            out.append(
                (
                    bytes(b.data[s : s + c]),
                    int(b.ts_ns[i]),
                    int(b.wire_len[i]),
                    b.linktype,
                    b.first_record + i,
                )
            )
    return out
