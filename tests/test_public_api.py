"""What a notebook user finds: tracker.__all__, dir(), help(), misspelled options, and the
documented meaning of every column and value, also through `tracker columns`."""

from __future__ import annotations

import inspect
import pydoc
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import tracker
from tests.conftest import CAPTURES, REPO
from tracker.cli import main
from tracker.report.columns import FLOW_COLUMNS, PACKET_COLUMNS, VALUES

CAPTURE = CAPTURES / "tcp-port-reuse.pcap"
# Every public function with a first argument to give it, for the option checks.
FUNCTIONS = {
    "read_flows": CAPTURE,
    "iter_flows": CAPTURE,
    "read_packets": CAPTURE,
    "read_flows_dask": [CAPTURE],
    "describe_columns": "flows",
    "column_values": "conn_state",
    "by_socket_pair": None,
    "by_host": None,
    "by_service": None,
    "by_port_class": None,
    "netstat_view": None,
    "by_state": None,
    "by_tunnel": None,
    "top_talkers": None,
}


def test_all_lists_the_reading_functions_options_summaries_and_errors() -> None:
    expected = {*FUNCTIONS, "FlowOptions", "LiveCapture", "TrackerError", "CaptureError", "NotACaptureError",
                "CorruptCaptureError", "OptionError", "CaptureSourceError", "MissingExtraError",
                "ClusterError",
                "TrackerWarning",
                "TruncatedCaptureWarning", "TimestampWarning", "__version__"}
    assert set(tracker.__all__) == expected
    for name in tracker.__all__:
        assert getattr(tracker, name) is not None
    shown = dir(tracker)
    assert all(name in shown for name in tracker.__all__)


def test_help_shows_every_public_function() -> None:
    text = pydoc.render_doc(tracker, renderer=pydoc.plaintext)
    for name in FUNCTIONS:
        assert re.search(rf"\b{name}\(", text), name


def test_import_tracker_stays_light() -> None:
    code = "import sys, tracker; print('pandas' in sys.modules, 'numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout.split()
    assert out == ["False", "False"]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_misspelled_option_is_an_option_error(name: str) -> None:
    fn = getattr(tracker, name)
    first = FUNCTIONS[name] if FUNCTIONS[name] is not None else tracker.read_flows(CAPTURE)
    with pytest.raises(tracker.OptionError, match="unknown option 'tcp_inactivty'"):
        result = fn(first, tcp_inactivty=5)
        if inspect.isgenerator(result):
            next(result)


def test_misspelled_option_suggests_the_right_one() -> None:
    with pytest.raises(tracker.OptionError, match="did you mean 'flow_ids'"):
        tracker.read_packets(CAPTURE, flow_ids=False, flow_id=True)
    with pytest.raises(tracker.OptionError, match="did you mean 'vlan_in_key'"):
        tracker.read_packets(CAPTURE, flow_ids=False, vlan_in_ky=True)


def test_every_coded_column_has_its_values_documented() -> None:
    names = {c.name for c in (*FLOW_COLUMNS, *PACKET_COLUMNS)}
    assert set(VALUES) <= names
    for column in ("conn_state", "history", "state", "orig_state", "resp_state", "end_reason",
                   "orig_reason", "proto", "port_class", "status"):
        values = tracker.column_values(column)
        assert list(values.columns) == ["value", "meaning"] and len(values) > 0
        assert values["meaning"].str.len().min() >= 5


def test_values_seen_in_real_flows_are_documented() -> None:
    """Every conn_state, state, end_reason and history letter of the scenario captures
    has a documented meaning (history: each letter in either case)."""
    flows = pd.concat([tracker.read_flows(p) for p in sorted(CAPTURES.glob("tcp-*.pcap"))])
    for column in ("conn_state", "state", "orig_state", "resp_state", "end_reason",
                   "orig_reason"):
        seen = set(flows[column].dropna().astype(str))
        assert seen <= set(VALUES[column]), (column, seen - set(VALUES[column]))
    letters = set("".join(flows["history"].dropna().astype(str)).upper())
    assert letters <= set(VALUES["history"]), letters - set(VALUES["history"])


def test_describe_columns_has_every_column_of_the_frames() -> None:
    flows = tracker.read_flows(CAPTURE)
    packets = tracker.read_packets(CAPTURE)
    assert list(tracker.describe_columns("flows")["name"]) == list(flows.columns)
    assert list(tracker.describe_columns("packets")["name"]) == list(packets.columns)
    for table, frame in (("flows", flows), ("packets", packets)):
        doc = tracker.describe_columns(table).set_index("name")["dtype"]
        for column in frame.columns:
            assert str(frame[column].dtype).startswith(doc[column].split("[")[0]), column


def test_tracker_columns_prints_columns_and_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["columns"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("flow_id")
    assert len(out.splitlines()) == len(FLOW_COLUMNS)
    assert main(["columns", "--values", "conn_state"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "S0" and "no reply" in lines[0]
    assert len(lines) == len(VALUES["conn_state"])
    assert main(["columns", "packets"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("frame")
    assert main(["columns", "--values", "no_such"]) == 2
    assert "columns that have one" in capsys.readouterr().err


def test_docs_reference_is_generated_from_the_column_table() -> None:
    res = subprocess.run([sys.executable, "docs/build.py", "--check"], cwd=REPO, check=False,
                         env={"PYTHONPATH": str(REPO)})
    assert res.returncode == 0, "docs/flow-record.md is out of date: run docs/build.py"


def test_no_docstring_points_outside_the_repository() -> None:
    outside = re.compile(r"SEMANTICS\.md|ZEEK-FACTS\.md|ARCHITECTURE\.md|\.\./shared")
    found = [f"{p.relative_to(REPO)}:{i}" for p in sorted((REPO / "tracker").rglob("*.py"))
             for i, line in enumerate(p.read_text("utf-8").splitlines(), 1)
             if outside.search(line)]
    assert found == []


def test_no_silent_fallback_imports_in_the_package() -> None:
    """A missing module must fail loudly: no importlib or __import__, and an ImportError
    caught only to raise MissingExtraError, which names the extra to install."""
    found = []
    for p in sorted((REPO / "tracker").rglob("*.py")):
        lines = p.read_text("utf-8").splitlines()
        for i, line in enumerate(lines):
            if re.search(r"\bimportlib\b|__import__", line):
                found.append(f"{p.relative_to(REPO)}:{i + 1}")
            if re.search(r"except .*(ModuleNotFoundError|ImportError)", line) and not (
                    i + 1 < len(lines) and "raise MissingExtraError(" in lines[i + 1]):
                found.append(f"{p.relative_to(REPO)}:{i + 1}")
    assert found == []


def test_missing_extra_error_names_the_extra() -> None:
    err = tracker.MissingExtraError("plot", "matplotlib")
    assert isinstance(err, tracker.TrackerError) and isinstance(err, ImportError)
    assert "socket-pair-tracker[plot]" in str(err) and "matplotlib" in str(err)


def test_packets_view_names_protocols_as_the_flows(tmp_path: Path) -> None:
    out = tmp_path / "packets.txt"
    assert main(["packets", "-o", str(out), str(CAPTURES / "icmp-echo.pcap")]) == 0
    lines = out.read_text().splitlines()
    assert "proto" in lines[0]
    assert all(" icmp " in line for line in lines[1:])


def test_readme_python_example_runs_as_written() -> None:
    """Every name the README's Python example uses works as written."""
    text = (REPO / "README.md").read_text("utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert blocks
    code = "\n".join(blocks)
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stderr[-2000:]


def test_packets_takes_the_flow_options_of_read(tmp_path: Path) -> None:
    """The same UDP socket pair on VLANs 10 and 20: one flow, or two with --vlan-key."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Dot1Q, Ether
    from scapy.utils import wrpcap

    frames = [Ether() / Dot1Q(vlan=v) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5000,
              dport=53) / b"q" for v in (10, 20)]
    for i, f in enumerate(frames):
        f.time = 1_700_000_000 + i
    vlan = str(tmp_path / "two-vlans.pcap")
    wrpcap(vlan, frames)
    plain, keyed = tmp_path / "plain.csv", tmp_path / "keyed.csv"
    assert main(["packets", "--format", "csv", "-o", str(plain), vlan]) == 0
    assert main(["packets", "--vlan-key", "--format", "csv", "-o", str(keyed), vlan]) == 0
    assert pd.read_csv(plain)["flow_id"].tolist() == [0, 0]
    assert pd.read_csv(keyed)["flow_id"].tolist() == [0, 1]
    with pytest.raises(SystemExit) as usage:  # argparse: a bad value is a usage error
        main(["packets", "--tcp-inactivity", "-1", vlan])
    assert usage.value.code == 2


def test_plain_read_loads_neither_scapy_nor_libpcap(tmp_path: Path) -> None:
    """Scapy and libpcap load only when a filter is given: a plain read must not pay them."""
    out = str(tmp_path / "out.csv")
    code = ("import sys; from tracker.cli import main; "
            f"main(['read', '-q', '--format', 'csv', '-o', {out!r}, 'captures/vlan.pcap']); "
            "print('scapy' in sys.modules); "
            f"main(['read', '-q', '-f', 'tcp', '-o', {out!r}, 'captures/vlan.pcap']); "
            "print('scapy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout.split()
    assert out == ["False", "True"]
