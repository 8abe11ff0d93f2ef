#!/usr/bin/env python3
"""What ``tracker.read_packets`` adds to a process, against the frame it returns.

    .venv/bin/python benchmarks/packets_memory.py CAPTURE...

For each capture, in a fresh process: the peak RSS (ru_maxrss) after ``import tracker``
and a first read of a small capture, then the peak during ``read_packets(CAPTURE)``;
the difference over the frame's own ``memory_usage(deep=True)`` is the ratio of issue
15's goal (at most 2.5), printed as a markdown row with the read's wall time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import resource, sys, time
import tracker
def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
tracker.read_packets(sys.argv[2])
base = peak()
start = time.perf_counter()
df = tracker.read_packets(sys.argv[1])
wall = time.perf_counter() - start
own = df.memory_usage(deep=True).sum() / 2**20
print(f"{len(df)} {own:.0f} {peak() - base:.0f} {wall:.2f}")
"""


def main() -> int:
    print("| capture | rows | frame MB | added peak MB | ratio | wall s |")
    print("|---|---|---|---|---|---|")
    for capture in sys.argv[1:]:
        out = subprocess.run([sys.executable, "-c", CHILD, capture,
                              str(REPO / "captures" / "office.pcap")],
                             cwd=REPO, env={"PYTHONPATH": str(REPO)}, capture_output=True,
                             text=True, check=True).stdout.split()
        rows, own, added, wall = int(out[0]), float(out[1]), float(out[2]), float(out[3])
        print(f"| {Path(capture).name} | {rows:,} | {own:.0f} | {added:.0f} | "
              f"{added / own:.2f} | {wall:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
