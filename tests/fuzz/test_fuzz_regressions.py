"""Every input the fuzzers found a bug with, replayed through its target (tests/fuzz/regressions).

``regressions/<target>/<name>.bin`` is a minimized input of ``fuzz_<target>.py``;
``regressions/README.md`` says what each one broke and what fixed it. An input
listed in KNOWN still breaks the flow table (which this work may not change):
its test is xfail(strict=True), so that it fails loudly once the bug is fixed
and the mark must go. Inputs run in a subprocess with a time limit, because a
hang inside numba-compiled code cannot be interrupted from Python.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REGRESSIONS = HERE / "regressions"
TIME_LIMIT_S = 30  # an input takes under a second once numba's on-disk cache is warm
KNOWN_HANG_LIMIT_S = 6  # enough to start Python and load the cache: the suite waits this long
HANG, CRASH = pytest.fail.Exception, AssertionError  # how test_regression_input fails
# name -> (why it is still expected to fail, how): flow-table bugs for the lead to assign.
KNOWN: dict[str, tuple[str, type[BaseException]]] = {}
# Inputs whose options the tracker now refuses: they must end in that one clear error.
REFUSED = {"flows/hang-session-timer-zero.bin":
           "OptionError: tcp_session_timer must be > 0 seconds, got 0"}
# The fuzz_program guard that each known flows input needs lifted to show its bug.
LIFT = {"flows/hang-session-timer-zero.bin": ("session-timer-zero",)}
# A runner that replays one input with one target, in a fresh interpreter.
RUNNER = """
import sys
sys.path.insert(0, {here!r})
import importlib
target = importlib.import_module("fuzz_" + {target!r})
data = open({path!r}, "rb").read()
if {lift!r}:
    target.regression_input(data, {lift!r})
else:
    target.one_input(data)
"""


def cases() -> list[Any]:
    """One pytest param per regression input, xfail-marked when it is in KNOWN."""
    out = []
    for path in sorted(REGRESSIONS.glob("*/*.bin")):
        name = f"{path.parent.name}/{path.name}"
        marks = []
        if name in KNOWN:
            reason, how = KNOWN[name]
            marks = [pytest.mark.xfail(strict=True, reason=reason, raises=how)]
        out.append(pytest.param(path, id=name, marks=marks))
    return out


@pytest.fixture(scope="module")
def warm_numba_cache() -> None:
    """Compile (or load) the flow table's and the walkers' code here, once, and cache it
    on disk, so that no subprocess spends its time limit compiling."""
    sys.path.insert(0, str(HERE))
    import fuzz_flows
    import fuzz_readers

    for target in (fuzz_flows, fuzz_readers):
        for data in target.WARMUP:
            target.one_input(data)


def test_every_known_input_exists() -> None:
    missing = [name for name in KNOWN if not (REGRESSIONS / name).is_file()]
    assert not missing


@pytest.mark.parametrize("path", cases())
def test_regression_input(path: Path, warm_numba_cache: None) -> None:
    """The input keeps the contract of fuzz_contract.py, within the time limit."""
    name = f"{path.parent.name}/{path.name}"
    code = RUNNER.format(here=str(HERE), target=path.parent.name, path=str(path),
                         lift=LIFT.get(name, ()))
    limit = KNOWN_HANG_LIMIT_S if KNOWN.get(name, ("", None))[1] is HANG else TIME_LIMIT_S
    try:
        res = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                             text=True, timeout=limit, cwd=HERE.parents[1])
    except subprocess.TimeoutExpired:
        pytest.fail(f"{path.name} did not finish within {limit} s (a hang)")
    if name in REFUSED:
        assert res.returncode != 0 and REFUSED[name] in res.stderr, res.stderr[-3000:]
        return
    assert res.returncode == 0, res.stderr[-3000:]
