"""The tracker in-process: ``tracker.read_packets(path)``, one DataFrame row per frame."""

from __future__ import annotations

import sys
import time

from _common import done

import tracker


def main(path: str, _out: str) -> None:
    start = time.perf_counter()
    df = tracker.read_packets(path)
    seconds = time.perf_counter() - start
    done(seconds, rows=len(df))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
