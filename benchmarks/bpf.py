#!/usr/bin/env python3
"""Throughput of the tcpdump filter loop (tracker/decode/bpf.py) on a generated capture.

    .venv/bin/python benchmarks/bpf.py [CAPTURE]     # default: benchmarks/data/std-1M.pcap

Reads the capture into memory once, then runs each program over every batch,
best of 5, and prints frames per second with the program's length. The loop
is compiled before timing (a one-time cost, like an import). The goal of the
command-line issue: at least 10 M packets/s for a program of about 10
instructions.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tracker.decode.bpf import BpfFilter
from tracker.sources.files import open_capture

EXPRESSIONS = ("ip", "tcp", "udp port 53", "tcp port 80", "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
               "net 10.0.0.0/8 and (port 80 or port 443)")


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "data" / "std-1M.pcap"
    if not path.exists():
        print(f"{path} is absent: run benchmarks/run.py once, or give a capture", file=sys.stderr)
        return 1
    with open_capture(path) as reader:
        batches = list(reader)
    frames = sum(len(b) for b in batches)
    print(f"{path.name}: {frames:,} frames\n")
    print("| expression | instructions | kept | M frames/s (best of 5) |")
    print("|---|---|---|---|")
    for expression in EXPRESSIONS:
        f = BpfFilter(expression)
        f.matches(batches[0])  # compile (or load numba's cache) before timing
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            kept = sum(int(f.matches(b).sum()) for b in batches)
            best = min(best, time.perf_counter() - t)
        n = f.program(batches[0].linktype).shape[1]
        print(f"| `{expression}` | {n} | {kept:,} | {frames / best / 1e6:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
