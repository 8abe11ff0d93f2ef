"""The command's netstat table made from FlowRecords without pandas is the DataFrame's.

netstat_view and render on the flows DataFrame are what the library gives and what the
netstat tests check; the command prints the same lines from the records' columns
(commands._netstat_table), sorted by the same rule, and never loads pandas for it.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys

import pytest

from tests.conftest import CAPTURES, REPO, corpus_traces, need_corpus
from tracker.cli.commands import sorted_flows, sorted_records, write_collected
from tracker.flows import FlowOptions, FlowRecords
from tracker.pipeline import FlowRun
from tracker.report.flows import flows_dataframe
from tracker.report.summary import RunSummary

SMALL = sorted(p for p in CAPTURES.glob("*.pcap*") if p.stat().st_size < 100_000)
SORT_KEYS = ("start", "bytes", "packets", "duration")


def _records(path: object) -> FlowRecords:
    return FlowRecords.concat(list(FlowRun(path, FlowOptions()).finished()))


def _table(flows: object, **options: object) -> str:
    args = argparse.Namespace(**{"format": "table", "by": None, "local": None,
                                 "numeric": False, **options})
    out = io.BytesIO()
    summary = RunSummary()
    summary.status["OK"] = 1
    write_collected(args, flows, out, summary)  # type: ignore[arg-type]
    return out.getvalue().decode()


def _same_table(records: FlowRecords) -> None:
    frame = flows_dataframe(records)
    for options in ({}, {"numeric": True, "local": "10.0.0.0/8,192.168.0.0/16,fd00::/8"}):
        direct, via_frame = _table(records, **options), _table(frame, **options)
        assert direct == via_frame, options


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.name)
def test_records_print_the_frames_table(path: object) -> None:
    _same_table(_records(path))


def test_vlans_icmp_ipv6_and_tunnels_too() -> None:
    need_corpus()
    names = ("ipv6_in_gtp", "4in4tunnel", "6in6tunnel", "capwap", "malformed_icmp", "1kxun")
    traces = [t for t in corpus_traces() if t.parent.name in names]
    assert traces, f"none of {names} in the corpus"
    for trace in traces:
        _same_table(_records(trace))


def test_a_vlan_prints_as_an_integer() -> None:
    """vlan.pcap: one 802.1Q tag, VLAN 10 (captures/build.py); a missing VLAN is '-'."""
    lines = _table(_records(CAPTURES / "vlan.pcap")).splitlines()
    assert lines[0].split()[:2] == ["Proto", "VLAN"]
    assert lines[1].split()[:2] == ["tcp", "10"]


@pytest.mark.parametrize("key", SORT_KEYS)
def test_records_sort_as_the_frame_does(key: str) -> None:
    records = _records(CAPTURES / "office.pcap")
    frame = flows_dataframe(records)
    for top in (None, 7):
        by_records = sorted_records(records, key, top).flow_id.tolist()
        assert by_records == sorted_flows(frame, key, top)["flow_id"].tolist()
    ids = sorted_records(records, key, None)
    if key == "bytes":  # by hand: descending IP bytes, ties by flow_id
        total = (ids.orig_ip_bytes + ids.resp_ip_bytes).tolist()
        assert total == sorted(total, reverse=True)
    if key == "start":
        assert ids.first_ts.tolist() == sorted(ids.first_ts.tolist())


def test_the_table_of_a_small_capture_loads_no_pandas() -> None:
    code = ("import sys; from tracker.cli import main; "
            f"rc = main(['read', '{CAPTURES / 'tcp-handshake-fin.pcap'}', '-q'], "
            "standalone=True); print(rc, 'pandas' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, check=False)
    assert done.stderr.split() == ["0", "False"], done.stderr[-500:]
    assert "198.51.100.20:http" in done.stdout and "TIME_WAIT" in done.stdout


def test_a_frame_of_fewer_columns_still_has_its_view() -> None:
    """netstat_view needs flow_id and tunnel_parents only to name tunnels."""
    from tracker.report.netstat import netstat_view

    frame = flows_dataframe(_records(CAPTURES / "tcp-handshake-fin.pcap"))
    view = netstat_view(frame.drop(columns=["flow_id", "tunnel_parents"]))
    assert view.iloc[0][["Local Address", "State"]].tolist() == ["192.0.2.10:49152", "TIME_WAIT"]
    assert "Tunnel" not in view
