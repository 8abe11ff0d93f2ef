#!/usr/bin/env python3
"""Hostile traffic benchmark: a SYN flood over millions of distinct socket pairs, capped.

    .venv/bin/python benchmarks/hostile.py                       # 10 million pairs (issue 5)
    .venv/bin/python benchmarks/hostile.py --pairs 1000000 --max-open-flows 50000 \
        --rss-bound-mb 400
    .venv/bin/python benchmarks/hostile.py --uncapped            # also run without the cap

The flood is made on the fly by the project's generator (``synth.py
--syn-flood N``: N bare SYNs from distinct spoofed sockets to one server, at
200 000 SYNs/s of capture time) into a temporary file under
``benchmarks/data/`` (git-ignored, removed afterwards unless ``--keep``). Then
``tracker read --max-open-flows M --format csv -o OUT`` runs on it as its own
process, and the script takes its wall time and peak RSS (``ru_maxrss`` from
``wait4``) and checks what it must say:

- every SYN is its own flow: N CSV rows, all ``S0``;
- the cap evicted exactly N - M flows: a lone SYN waits 5 s (Zeek's
  ``tcp_attempt_delay``) before it may be removed, and 5 s of this flood hold
  1 000 000 SYNs, so with M below that every flow is evicted except the M
  still open at the end of the capture;
- the summary line on stderr says ``N - M evicted by the open-flow cap``;
- peak RSS stays under ``--rss-bound-mb`` (300 MB, issue 4's bound for
  ``tracker read`` on any file: the process holds about 220 MB of imports and
  numba's code; the table's memory follows the cap, about 1.5 KB per open flow
  it allows, not the number of pairs);
- peak RSS does not grow with the number of pairs: a reference run on a flood
  of a tenth of the size (same cap) must peak within ``--growth-mb`` of it.

Prints one line per run and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from bench_env import measure

FLOOD_PPS = 200_000  # synth_scenarios.FloodMode.pps: SYNs per second of capture time
ATTEMPT_DELAY_S = 5  # FlowOptions.tcp_attempt_delay, Zeek's default
SUMMARY = re.compile(r"(\d+) frames .*?, (\d+) flows(?:, (\d+) evicted by the open-flow cap)?")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=10_000_000, help="SYNs, one socket pair each")
    p.add_argument("--max-open-flows", type=int, default=10_000,
                   help="the open-flow cap (default 10000)")
    p.add_argument("--rss-bound-mb", type=float, default=300.0,
                   help="peak RSS limit, MB (default 300)")
    p.add_argument("--growth-mb", type=float, default=64.0,
                   help="allowed peak RSS growth over the run on a tenth of the pairs, MB")
    p.add_argument("--uncapped", action="store_true", help="also run without the cap")
    p.add_argument("--keep", action="store_true", help="keep the flood and the CSV")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per step")
    return p.parse_args(argv)


def make_flood(path: Path, pairs: int, seed: int, timeout: float) -> float:
    """Write the SYN flood with synth.py; returns the seconds it took."""
    start = time.perf_counter()
    subprocess.run([sys.executable, str(HERE / "synth.py"), "-o", str(path), "--syn-flood",
                    str(pairs), "--seed", str(seed), "--quiet"], check=True, timeout=timeout)
    return time.perf_counter() - start


def count_lines(path: Path) -> int:
    """Lines of a file, read in 16 MB pieces (the CSV of 10 million flows is about 2 GB)."""
    n = 0
    with open(path, "rb") as f:
        while piece := f.read(16 << 20):
            n += piece.count(b"\n")
    return n


@dataclass
class ReadRun:
    """One measured ``tracker read`` and what it printed and wrote."""

    cap: int | None
    wall_s: float
    rss_mb: float
    code: int
    summary: str  # the summary line on stderr
    frames: int  # numbers of that line, -1 when it is missing
    flows: int
    evicted: int
    rows: int  # CSV rows written
    stderr: str


def run_read(flood: Path, out: Path, cap: int | None, timeout: float) -> ReadRun:
    """``tracker read`` on the flood, measured."""
    cmd = [sys.executable, "-m", "tracker", "read", "--format", "csv", "-o", str(out)]
    cmd += [] if cap is None else ["--max-open-flows", str(cap)]
    m = measure([*cmd, str(flood)], timeout, cwd=REPO, extra_env={"PYTHONPATH": str(REPO)})
    summary = next((ln for ln in m.err.splitlines() if ln.startswith("tracker: ")), "")
    got = SUMMARY.search(summary)
    numbers = (int(got[1]), int(got[2]), int(got[3] or 0)) if got else (-1, -1, -1)
    rows = count_lines(out) - 1 if out.exists() else -1
    return ReadRun(cap, m.wall, m.rss_mb, m.code, summary, *numbers, rows, m.err[-2000:])


def check(r: ReadRun, pairs: int, bound: float) -> list[str]:
    """What is wrong with one run (empty when it is as it must be)."""
    wrong = []
    if r.code != 0:
        wrong.append(f"exit status {r.code}: {r.stderr}")
    if not r.frames == r.flows == r.rows == pairs:
        wrong.append(f"{pairs} SYNs must give {pairs} frames, flows and CSV rows: {r}")
    if r.cap is not None and r.cap < FLOOD_PPS * ATTEMPT_DELAY_S:
        if r.evicted != pairs - r.cap:
            wrong.append(f"evicted {r.evicted}, expected {pairs - r.cap}")
        if "evicted by the open-flow cap" not in r.summary:
            wrong.append(f"the summary does not mention the evictions: {r.summary!r}")
        if r.rss_mb > bound:
            wrong.append(f"peak RSS {r.rss_mb:.0f} MB over the {bound:.0f} MB bound")
    return wrong


def one_size(work: Path, pairs: int, caps: list[int | None], a: argparse.Namespace
             ) -> tuple[dict[int | None, float], bool]:
    """Make a flood of ``pairs`` SYNs and read it with each cap; (peak RSS per cap, failed)."""
    flood = work / f"syn-flood-{pairs}.pcap"
    secs = make_flood(flood, pairs, a.seed, a.timeout)
    print(f"made {flood.name}: {pairs} SYNs, {flood.stat().st_size / 1e6:.0f} MB "
          f"in {secs:.0f} s", flush=True)
    rss: dict[int | None, float] = {}
    failed = False
    for cap in caps:
        out = work / f"flows-{pairs}-{cap}.csv"
        r = run_read(flood, out, cap, a.timeout)
        wrong = check(r, pairs, a.rss_bound_mb)
        failed |= bool(wrong)
        rss[cap] = r.rss_mb
        print(f"{pairs} pairs, tracker read --max-open-flows {cap}: {r.wall_s:.1f} s, "
              f"{pairs / r.wall_s / 1e6:.2f} M packets/s, peak RSS {r.rss_mb:.0f} MB, "
              f"{r.rows} rows; {r.summary}; "
              f"{'OK' if not wrong else 'FAILED: ' + '; '.join(wrong)}", flush=True)
        if not a.keep:  # a CSV of 10 million flows is about 2 GB
            out.unlink(missing_ok=True)
    if not a.keep:
        flood.unlink(missing_ok=True)
    return rss, failed


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="hostile-", dir=data))
    try:
        ref, failed_ref = one_size(work, a.pairs // 10, [a.max_open_flows], a)
        caps = [a.max_open_flows] + ([None] if a.uncapped else [])
        big, failed = one_size(work, a.pairs, caps, a)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    growth = big[a.max_open_flows] - ref[a.max_open_flows]
    grew = growth > a.growth_mb
    print(f"peak RSS growth from {a.pairs // 10} to {a.pairs} pairs with the cap: "
          f"{growth:+.0f} MB; {'FAILED: over' if grew else 'OK: within'} {a.growth_mb:.0f} MB")
    return 1 if failed or failed_ref or grew else 0


if __name__ == "__main__":
    sys.exit(main())
