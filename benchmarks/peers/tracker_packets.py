"""The tracker in-process: ``tracker.read_packets(path)``, one DataFrame row per frame."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import done

import tracker

WARM_UP = Path(__file__).resolve().parents[2] / "captures" / "tcp-handshake-fin.pcap"


def main(path: str, _out: str) -> None:
    # Warm-up on a small capture: numba loads its compiled code on first use (a
    # one-time cost, like the imports, which are not timed either).
    tracker.read_packets(WARM_UP)
    start = time.perf_counter()
    df = tracker.read_packets(path)
    seconds = time.perf_counter() - start
    done(seconds, rows=len(df))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
