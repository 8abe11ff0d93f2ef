"""The tracker in-process: ``tracker.read_flows(path)`` (full Zeek states) into a DataFrame."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import done

import tracker

WARM_UP = Path(__file__).resolve().parents[2] / "captures" / "tcp-handshake-fin.pcap"

COLUMNS = [
    "proto",
    "orig_addr",
    "orig_port",
    "resp_addr",
    "resp_port",
    "orig_pkts",
    "orig_wire_bytes",
    "resp_pkts",
    "resp_wire_bytes",
    "conn_state",
]


def main(path: str, out: str) -> None:
    # Warm-up on a small capture: numba loads its compiled code on first use (a
    # one-time cost, like the imports, which are not timed either).
    tracker.read_flows(WARM_UP)
    start = time.perf_counter()
    df = tracker.read_flows(path)
    seconds = time.perf_counter() - start
    df[[c for c in COLUMNS if c in df.columns]].to_csv(out, index=False)
    done(seconds, rows=len(df))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
