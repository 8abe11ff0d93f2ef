#!/usr/bin/env python3
"""One change measured: `tracker read` of two git revisions, interleaved, best of N.

    .venv/bin/python benchmarks/ab.py REV_A REV_B CAPTURE [--rounds N] [-- READ OPTIONS]

Each revision is laid out with `git archive` in a folder of its own (each keeps its own
numba cache; one unmeasured run fills it), then `python -m tracker read CAPTURE
--format csv -o FILE` (or the READ OPTIONS given after `--`) runs from each folder in
turn, A, B, A, B, ...: this machine's noise hits both alike. Prints each revision's
best wall time, all its runs with their peak RSS, and whether both wrote the same bytes.
How each optimisation commit's message got its numbers (one change per commit).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def lay_out(rev: str, folder: Path) -> None:
    """The files of ``rev`` in ``folder`` (git archive: committed files only)."""
    folder.mkdir()
    got = subprocess.run(["git", "-C", str(REPO), "archive", rev], capture_output=True,
                         check=False)
    if got.returncode:
        raise SystemExit(f"ab.py: {rev}: not a revision of {REPO} "
                         f"({got.stderr.decode().strip()[-200:]})")
    archive = got.stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)


def run(folder: Path, args: list[str]) -> tuple[float, float]:
    """(wall s, peak RSS MB) of one ``python -m tracker`` in ``folder``."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tracker", *args], cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        assert proc.stderr is not None
        raise SystemExit(f"{folder.name}: tracker {' '.join(args)} failed: "
                         f"{proc.stderr.read().decode()[-300:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", metavar="REV_A", help="the revision before the change, e.g. HEAD~1")
    p.add_argument("b", metavar="REV_B", help="the revision with it, e.g. HEAD")
    p.add_argument("capture", type=Path, help="the capture to read")
    p.add_argument("--rounds", type=int, default=5, help="runs of each (default 5)")
    p.add_argument("options", nargs="*", help="after --: `tracker read` options "
                   "(default: --format csv -o FILE)")
    a = p.parse_args()
    if not a.capture.is_file() or a.rounds < 1:
        p.error(f"{a.capture}: expected a capture file and a positive number of rounds")
    with tempfile.TemporaryDirectory(prefix="tracker-ab-") as tmp:
        folders = {rev: Path(tmp) / name for rev, name in ((a.a, "a"), (a.b, "b"))}
        outs = {rev: Path(tmp) / f"{name}.out" for rev, name in ((a.a, "a"), (a.b, "b"))}
        for rev, folder in folders.items():
            lay_out(rev, folder)
        runs: dict[str, list[tuple[float, float]]] = {rev: [] for rev in folders}
        for i in range(a.rounds + 1):  # round 0 fills each numba cache, unmeasured
            for rev, folder in folders.items():
                options = a.options or ["--format", "csv", "-o", str(outs[rev])]
                got = run(folder, ["read", str(a.capture.resolve()), "-q", *options])
                if i:
                    runs[rev].append(got)
        for rev, got in runs.items():
            print(f"{rev}: best {min(w for w, _ in got):.2f} s; runs "
                  + ", ".join(f"{w:.2f} s {m:.0f} MB" for w, m in got))
        if not a.options:
            same = filecmp.cmp(outs[a.a], outs[a.b], shallow=False)
            print("outputs: " + ("the same bytes" if same else "DIFFERENT"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
