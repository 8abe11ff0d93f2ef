"""Every real capture of ../shared/corpus against tshark's and capinfos' view of it.

Oracles (corpus/README.md): info.json "packets" is capinfos' packet count;
packets.tsv.gz has tshark's frame.time_epoch, frame.len and frame.cap_len per
frame. tshark prints time_epoch with 9 fractional digits, except for broken
records (e.g. ndpi/fuzz-2021-10-13 has ts_nsec = 1882137472 and prints 10):
those are not compared. A time past int64 nanoseconds must come back NaT with
one TimestampWarning.
"""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import present
from tracker.errors import TimestampWarning, TruncatedCaptureWarning
from tracker.frames import NAT_NS
from tracker.sources.files import open_capture

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
TRACES = sorted(CORPUS.glob("*/*/trace.pcap*")) if CORPUS.is_dir() else []
INT64_MAX = 2**63 - 1

pytestmark = pytest.mark.corpus


def _tshark(d: Path) -> tuple[list[int | None], np.ndarray, np.ndarray]:
    """(time in ns or None when not 9 digits, frame.len, frame.cap_len) per frame."""
    with gzip.open(d / "packets.tsv.gz", "rt") as f:
        head = f.readline().rstrip("\n").split("\t")
        rows = [line.rstrip("\n").split("\t") for line in f]
    it, il, ic = (
        head.index("frame.time_epoch"),
        head.index("frame.len"),
        head.index("frame.cap_len"),
    )
    times: list[int | None] = []
    for r in rows:
        sec, _, frac = r[it].partition(".")
        times.append(int(sec) * 10**9 + int(frac) if len(frac) == 9 else None)
    return times, np.array([int(r[il]) for r in rows]), np.array([int(r[ic]) for r in rows])


def _read(
    trace: Path,
) -> tuple[object, np.ndarray, np.ndarray, np.ndarray, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open_capture(trace) as cap:
            batches = list(cap)
    cat = lambda name: (
        np.concatenate([getattr(b, name) for b in batches]) if batches else np.empty(0, np.int64)
    )
    return cap, cat("ts_ns"), cat("wire_len"), cat("caplen"), list(caught)


@pytest.mark.parametrize("trace", present([pytest.param(t, id=str(t.parent.relative_to(CORPUS)))
                                           for t in TRACES], CORPUS))
def test_corpus_capture(trace: Path) -> None:
    d = trace.parent
    info = json.loads((d / "info.json").read_text())
    cap, ts, wire, caplen, caught = _read(trace)
    times, t_len, t_caplen = _tshark(d)
    assert len(ts) == int(info["packets"]) == len(times)
    assert cap.format == info["format"].replace("nsecpcap", "pcap")  # type: ignore[attr-defined]
    assert np.array_equal(wire, t_len) and np.array_equal(caplen, t_caplen)
    want = np.array(
        [NAT_NS if t is not None and t > INT64_MAX else (t if t is not None else 0) for t in times],
        np.int64,
    )
    known = np.array([t is not None for t in times], bool)
    assert np.array_equal(ts[known], want[known])
    if len(ts):  # first and last frames, spelled out as the brief asks
        for i in (0, -1):
            if times[i] is not None:
                t = int(times[i])  # type: ignore[arg-type]
                assert int(ts[i]) == (NAT_NS if t > INT64_MAX else t)
    kinds = [w.category for w in caught]
    assert kinds.count(TimestampWarning) == (1 if (want[known] == NAT_NS).any() else 0)
    assert kinds.count(TruncatedCaptureWarning) == (
        1 if _trailing_bytes(trace, info, caplen) else 0
    )
    assert len(kinds) == kinds.count(TimestampWarning) + kinds.count(TruncatedCaptureWarning)


def _trailing_bytes(trace: Path, info: dict[str, str], caplen: np.ndarray) -> int:
    """Bytes of a classic pcap beyond its header and complete records (a cut record)."""
    if trace.suffix != ".pcap":
        return 0
    return int(trace.stat().st_size - 24 - 16 * len(caplen) - int(caplen.sum()))


def test_corpus_present_or_skip() -> None:
    if not TRACES:
        pytest.skip(f"the shared corpus is absent: expected captures under {CORPUS}")
    assert len(TRACES) >= 100
