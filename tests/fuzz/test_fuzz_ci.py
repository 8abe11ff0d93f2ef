"""CI: every atheris fuzz target runs for a bounded time, seeded from the captures.

The three targets (fuzz_readers.py, fuzz_decode.py, fuzz_flows.py) run at the
same time, each as its own process for ``TRACKER_FUZZ_SECONDS`` seconds (20 by
default: a minute of fuzzing in all, ~30 s of wall time on two cores, for CI's
15 minutes), from seeds that tests/fuzz/seeds.py makes out of ``captures/`` and
``../shared/corpus`` when present. Any crash, hang (over 10 s for one input) or
memory blow-up (over 2 GB) fails the test with the input that did it.
``TRACKER_FUZZ_SECONDS=0`` skips the test; tests/fuzz/README.md tells how to
run a target for longer.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import seeds

pytest.importorskip("atheris", reason="atheris is not installed (pip install -e '.[test]')")

HERE = Path(__file__).resolve().parent
TARGETS = ("readers", "decode", "flows")
SECONDS = int(os.environ.get("TRACKER_FUZZ_SECONDS", "20"))
SEED = int(os.environ.get("TRACKER_FUZZ_SEED", "1"))  # libFuzzer's -seed: same run each time
PER_INPUT_TIMEOUT_S = 10
RSS_LIMIT_MB = 2048
DONE = re.compile(r"Done (\d+) runs in (\d+) second")


@pytest.fixture(scope="module")
def seed_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed corpora of the three targets, built once."""
    out = tmp_path_factory.mktemp("fuzz-seeds")
    counts = seeds.build(out)
    assert all(counts.values()), counts
    return out


def libfuzzer_cmd(target: str, corpus: Path, seed_dir: Path, artifacts: Path) -> list[str]:
    """The command that fuzzes ``target`` for SECONDS, new inputs into ``corpus``."""
    return [sys.executable, str(HERE / f"fuzz_{target}.py"), str(corpus), str(seed_dir),
            f"-max_total_time={SECONDS}", f"-timeout={PER_INPUT_TIMEOUT_S}",
            f"-rss_limit_mb={RSS_LIMIT_MB}", f"-seed={SEED}", "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/"]


def failure(target: str, log: str, artifacts: Path) -> str:
    """What to show when a target failed: the input (base64) and the end of the log."""
    found = sorted(artifacts.iterdir())
    inputs = "\n".join(f"{p.name}: {base64.b64encode(p.read_bytes()[:2048]).decode()}"
                       for p in found)
    return (f"fuzz_{target}.py failed; reproduce with `.venv/bin/python "
            f"tests/fuzz/fuzz_{target}.py FILE` on the input below, then add it to "
            f"tests/fuzz/regressions/{target}/\n{inputs}\n--- log ---\n{log[-6000:]}")


@pytest.mark.skipif(SECONDS <= 0, reason="TRACKER_FUZZ_SECONDS=0")
def test_fuzz_targets_bounded_run(seed_dirs: Path, tmp_path: Path) -> None:
    """All targets at once, each for SECONDS: no crash, no hang, no memory blow-up."""
    procs = {}
    for target in TARGETS:
        corpus, artifacts = tmp_path / target, tmp_path / f"{target}-artifacts"
        corpus.mkdir()
        artifacts.mkdir()
        log = open(tmp_path / f"{target}.log", "w+b")  # noqa: SIM115 - closed below
        procs[target] = (subprocess.Popen(
            libfuzzer_cmd(target, corpus, seed_dirs / target, artifacts),
            stdout=log, stderr=subprocess.STDOUT, cwd=HERE.parents[1]), log, artifacts)
    problems, runs = [], {}
    for target, (proc, log, artifacts) in procs.items():
        code = proc.wait(timeout=SECONDS + 300)  # + warm-up, seed replay, numba compiling
        log.seek(0)
        text = log.read().decode(errors="replace")
        log.close()
        done = DONE.search(text)
        runs[target] = int(done[1]) if done else 0
        if code != 0 or any(artifacts.iterdir()) or not done:
            problems.append(failure(target, text, artifacts))
    assert not problems, "\n\n".join(problems)
    assert all(n > 0 for n in runs.values()), runs
