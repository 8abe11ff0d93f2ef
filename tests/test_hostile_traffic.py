"""Hostile traffic from the project's generator (benchmarks/synth.py): a port scan, a SYN flood.

Expected states come from SEMANTICS.md section 4 and the packets each probe
makes (benchmarks/README.md describes them), written here by hand:

- open port: SYN, SYN-ACK, then the scanner's RST: history ``ShR``, RSTO;
- closed port: SYN answered by RST-ACK: history ``Sr``, REJ;
- filtered port: a SYN nobody answers (retried once from the next source
  port, a flow of its own): history ``S``, S0.

The flood: N bare SYNs from N distinct spoofed socket pairs, 200 000 per
second of capture time. A lone SYN may be removed only 5 s after it (Zeek's
tcp_attempt_delay), so with a cap of M open flows far below 5 s of SYNs every
flow is evicted by the cap except the M still open at the end: N - M
evictions. The 10-million-pair flood is benchmarks/hostile.py (not a test:
it takes minutes).
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import tracker
from tracker.report.summary import RunSummary

REPO = Path(__file__).resolve().parents[1]
SYNTH = REPO / "benchmarks" / "synth.py"
# kind in the truth CSV -> (conn_state, history), by hand from the probe's packets.
SCAN_EXPECTED = {"scan-open": ("RSTO", "ShR"), "scan-closed": ("REJ", "Sr"),
                 "scan-filtered": ("S0", "S")}
SCAN_PORTS = 5000
FLOOD_PPS = 200_000  # synth_scenarios.FloodMode.pps
ATTEMPT_DELAY_S = 5  # FlowOptions.tcp_attempt_delay (Zeek's default)
SUMMARY = re.compile(r"tracker: (\d+) frames \(all decoded\), (\d+) flows, "
                     r"(\d+) evicted by the open-flow cap")


def child_env() -> dict[str, str]:
    """The environment of a measured child: the work tree, and numba as users get it (an
    in-process ``tracker.cli.main`` call in another test may have set NUMBA_DISABLE_JIT)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    return {**env, "PYTHONPATH": str(REPO)}


def synth(tmp: Path, name: str, *args: str) -> tuple[Path, Path]:
    """Run the generator; returns the pcap and its truth CSV."""
    pcap, truth = tmp / f"{name}.pcap", tmp / f"{name}.csv"
    subprocess.run([sys.executable, str(SYNTH), "-o", str(pcap), "--truth", str(truth),
                    "--quiet", *args], check=True, timeout=300)
    return pcap, truth


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]]]:
    pcap, truth = synth(tmp_path_factory.mktemp("scan"), "scan", "--port-scan",
                        "--scan-ports", str(SCAN_PORTS))
    with open(truth, newline="") as f:
        return pcap, list(csv.DictReader(f))


def test_port_scan_truth_is_what_the_probes_make(scan: tuple[Path, list[dict[str, str]]]
                                                 ) -> None:
    """The generator's own states agree with the hand-written table, and cover every kind."""
    _, rows = scan
    kinds = Counter(r["kind"] for r in rows)
    assert set(kinds) == set(SCAN_EXPECTED)
    assert all(r["conn_state"] == SCAN_EXPECTED[r["kind"]][0] for r in rows)
    # every port probed once, filtered ones twice (nmap's retry from the next source port)
    assert kinds["scan-open"] + kinds["scan-closed"] + kinds["scan-filtered"] // 2 == SCAN_PORTS


def test_port_scan_flows(scan: tuple[Path, list[dict[str, str]]]) -> None:
    """One flow per probe, with the state and history its packets make."""
    pcap, rows = scan
    df = tracker.read_flows(pcap)
    assert len(df) == len(rows)
    got = {(r.orig_addr, r.orig_port, r.resp_addr, r.resp_port): (r.conn_state, r.history)
           for r in df.itertuples()}
    want = {(r["a_addr"], int(r["a_port"]), r["b_addr"], int(r["b_port"])):
            SCAN_EXPECTED[r["kind"]] for r in rows}
    assert got == want
    states = Counter(df["conn_state"])
    assert states["REJ"] > 1000 and states["S0"] > 100 and states["RSTO"] > 0
    assert df.attrs["summary"]["evicted"] == 0


@pytest.fixture(scope="module")
def flood(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pcap, _ = synth(tmp_path_factory.mktemp("flood"), "flood", "--syn-flood", "20000")
    return pcap


def test_syn_flood_evictions_counted(flood: Path) -> None:
    """Every SYN is an S0 flow; the cap evicts all but the last M, and the summary says so."""
    cap, pairs = 500, 20_000
    assert cap < FLOOD_PPS * ATTEMPT_DELAY_S
    df = tracker.read_flows(flood, max_open_flows=cap)
    assert len(df) == pairs
    assert set(df["conn_state"]) == {"S0"} and set(df["history"]) == {"S"}
    assert Counter(df["end_reason"]) == {"evicted": pairs - cap, "eof": cap}
    summary = RunSummary(**df.attrs["summary"])
    assert (summary.evicted, summary.flows) == (pairs - cap, pairs)
    assert f"{pairs - cap} evicted by the open-flow cap" in summary.line()


def test_syn_flood_cli_summary(flood: Path, tmp_path: Path) -> None:
    """`tracker read --max-open-flows` prints the evictions on stderr."""
    res = subprocess.run([sys.executable, "-m", "tracker", "read", "--max-open-flows", "500",
                          "--format", "csv", "-o", str(tmp_path / "f.csv"), str(flood)],
                         check=False, capture_output=True, text=True, cwd=REPO, timeout=120,
                         env=child_env())
    assert res.returncode == 0, res.stderr
    got = SUMMARY.search(res.stderr)
    assert got, res.stderr
    assert tuple(map(int, got.groups())) == (20_000, 20_000, 19_500)
    assert len((tmp_path / "f.csv").read_text().splitlines()) == 20_000 + 1


# Runs the command and prints its peak RSS. A child's ru_maxrss also counts the memory of
# the process it was forked from before exec (Linux keeps the high-water mark across
# exec), so the measured command must come from this small process, not from pytest's.
_MEASURE = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def peak_rss_mb(cmd: list[str]) -> float:
    """Peak RSS of a command (ru_maxrss from wait4, KB on Linux), in MB."""
    res = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], cwd=REPO, env=child_env(),
                         capture_output=True, text=True, check=True, timeout=300)
    code, kb = map(int, res.stdout.split())
    assert code == 0, res.stderr
    return kb / 1024


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KB on Linux only")
def test_syn_flood_memory_bounded_by_the_cap(tmp_path: Path) -> None:
    """With the cap, 4 times the pairs (several full 8 MB batches) costs no more memory."""
    small, _ = synth(tmp_path, "small", "--syn-flood", "150000")
    big, _ = synth(tmp_path, "big", "--syn-flood", "600000")
    read = [sys.executable, "-m", "tracker", "read", "--max-open-flows", "2000", "--format",
            "csv", "-o", os.devnull]
    peak_rss_mb([*read, str(small)])  # unmeasured: numba compiling (if the cache is stale)
    rss_small, rss_big = peak_rss_mb([*read, str(small)]), peak_rss_mb([*read, str(big)])
    # Uncapped, 300 000 open flows already peak at 813 MB (benchmarks/hostile.py --uncapped).
    assert rss_big < rss_small + 40, (rss_small, rss_big)
    assert rss_big < 300, rss_big  # issue 4's bound for `tracker read` on any file
