#!/usr/bin/env python3
"""Run the fuzz targets for a number of executions each, restarting after every crash.

    .venv/bin/python tests/fuzz/longrun.py OUT_DIR readers=6500000 decode=2000000 \\
        flows=1000000 flows-python=500000 --jobs 2

``flows-python`` is fuzz_flows.py with NUMBA_DISABLE_JIT=1 (the flow table's
kernel as instrumented Python: slower, but coverage-guided inside the state
machine). ``--jobs`` targets run at once, each at ``nice 10`` so that other
work on the machine goes first. OUT_DIR keeps the seeds, each target's
growing corpus (a later run continues from it), the inputs that crashed or
hung (``artifacts/<target>/``) and the logs. libFuzzer stops at the first
crash; this script then starts the target again (from its corpus) until the
executions are done or ``--max-restarts`` crashes were seen, and sums the
executions over the restarts. At the end it prints one line per target and
writes ``summary.json``. A target named twice with a suffix (``readers.2=N``)
runs as a second job with a corpus of its own, so that a cheap target can have
both cores once the slower ones are done.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import seeds

EXECUTED = re.compile(r"stat::number_of_executed_units: (\d+)")
PER_INPUT_TIMEOUT_S = 20  # generous: a shared machine slows single inputs
RSS_LIMIT_MB = 2048


@dataclass
class Job:
    """One target's long run and what it found."""

    name: str  # readers, decode, flows or flows-python
    runs: int
    executed: int = 0
    seconds: float = 0.0
    restarts: int = 0
    artifacts: list[str] = field(default_factory=list)


def command(job: Job, out: Path, remaining: int) -> tuple[list[str], dict[str, str]]:
    """The libFuzzer command line of one attempt and its environment."""
    target = job.name.split(".")[0].removesuffix("-python")
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1" if job.name.endswith("-python") else "0"}
    cmd = ["nice", "-n", "10", sys.executable, str(HERE / f"fuzz_{target}.py"),
           str(out / "corpus" / job.name), str(out / "seeds" / target), f"-runs={remaining}",
           f"-timeout={PER_INPUT_TIMEOUT_S}", f"-rss_limit_mb={RSS_LIMIT_MB}",
           "-print_final_stats=1", f"-artifact_prefix={out / 'artifacts' / job.name}/"]
    return cmd, env


def run_job(job: Job, out: Path, max_restarts: int) -> Job:
    """Fuzz until ``job.runs`` executions are done, restarting after each crash."""
    for d in ("corpus", "artifacts"):
        (out / d / job.name).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    while job.executed < job.runs and job.restarts <= max_restarts:
        seen = set(os.listdir(out / "artifacts" / job.name))
        cmd, env = command(job, out, job.runs - job.executed)
        log = out / "logs" / f"{job.name}-{job.restarts}.log"
        with open(log, "wb") as f:
            code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                  check=False).returncode
        counts = EXECUTED.findall(log.read_text(errors="replace"))
        job.executed += int(counts[-1]) if counts else 0
        new = sorted(set(os.listdir(out / "artifacts" / job.name)) - seen)
        job.artifacts += new
        if code == 0 and not new:
            break
        job.restarts += 1
        print(f"{job.name}: exit {code} after {job.executed} executions, found {new}; "
              f"log {log}", flush=True)
    job.seconds = time.perf_counter() - start
    return job


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="directory for seeds, corpora, artifacts and logs")
    p.add_argument("targets", nargs="+", metavar="TARGET=RUNS",
                   help="readers, decode, flows or flows-python (a suffix .K for a second "
                        "job of the same target), with executions")
    p.add_argument("--jobs", type=int, default=2, help="targets at once (default 2)")
    p.add_argument("--max-restarts", type=int, default=20, help="crashes before giving up")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    jobs = [Job(t.split("=")[0], int(t.split("=")[1])) for t in a.targets]
    for d in ("seeds", "logs"):
        (a.out / d).mkdir(parents=True, exist_ok=True)
    print(f"seeds: {seeds.build(a.out / 'seeds')}", flush=True)
    with ThreadPoolExecutor(a.jobs) as pool:
        done = list(pool.map(lambda j: run_job(j, a.out, a.max_restarts), jobs))
    for j in done:
        print(f"{j.name}: {j.executed} executions in {j.seconds / 60:.0f} min "
              f"({j.executed / max(j.seconds, 1e-9):.0f}/s), {j.restarts} restarts, "
              f"{len(j.artifacts)} crash/timeout inputs: {', '.join(j.artifacts) or 'none'}")
    total = sum(j.executed for j in done)
    print(f"total: {total} executions")
    (a.out / "summary.json").write_text(json.dumps([asdict(j) for j in done], indent=1))
    return 0 if not any(j.artifacts for j in done) else 1


if __name__ == "__main__":
    sys.exit(main())
