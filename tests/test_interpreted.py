"""The compiled loops give the same flows when run as plain Python.

The CLI runs them interpreted for small inputs (NUMBA_DISABLE_JIT=1: no numba
import, no cache to load); everything else runs them compiled. Both must agree.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings

import pandas as pd

import tracker
from tests.conftest import CAPTURES, CORPUS, REPO

ZEEK_TRACES = ["wikipedia-default", "pop3-rej-portreuse", "modbus-p502-rsto-rstrh",
               "ssh-half-duplex-client", "ipv4-frag-syn", "localhost-bad-chksum"]

_CHILD = """
import io, json, sys, warnings
import tracker
from tracker.errors import TrackerWarning
warnings.simplefilter("error")  # as plain Python too, no numpy warning (overflow, ...)
warnings.simplefilter("ignore", TrackerWarning)  # truncated captures say so
assert "numba" not in sys.modules
out = {p: tracker.read_flows(p).to_csv(index=False) for p in json.loads(sys.argv[1])}
assert "numba" not in sys.modules, "numba was imported"
print(json.dumps(out))
"""


def _inputs() -> list[str]:
    paths = [str(p) for p in sorted(CAPTURES.glob("*.pcap*"))]
    paths += [str(p) for t in ZEEK_TRACES for p in (CORPUS / "zeek" / t).glob("trace.pcap*")]
    return paths


def test_interpreted_flows_equal_compiled_flows() -> None:
    paths = _inputs()
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    r = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(paths)], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr
    interpreted = json.loads(r.stdout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p in paths:
            compiled = tracker.read_flows(p).to_csv(index=False)
            assert interpreted[p] == compiled, p
    assert len(pd.read_csv(io.StringIO(interpreted[paths[0]]))) >= 1
