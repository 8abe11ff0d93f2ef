"""The command line as a user meets it: output, one-line errors, exit codes."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CAPTURES, REPO
from tracker import __version__
from tracker.report.columns import FLOW_COLUMNS


def tracker(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracker", *args], check=False, cwd=REPO,
                          input=stdin,
                          capture_output=True, timeout=120,
                          text=stdin is None)  # type: ignore[call-overload]


def _text(out: str | bytes) -> str:
    return out.decode() if isinstance(out, bytes) else out


def test_version() -> None:
    r = tracker("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"tracker {__version__}"


def test_help_lists_the_commands() -> None:
    r = tracker("--help")
    assert r.returncode == 0
    assert "read" in r.stdout and "packets" in r.stdout and "examples:" in r.stdout


def test_read_table_is_netstats_view() -> None:
    # captures/README.md: 192.0.2.10:49152 -> 198.51.100.20:80, 6 packets and 324 IP bytes
    # out, 5 and 404 back, SF ShADadFf; the client closed first: TIME_WAIT on its side.
    r = tracker("read", "captures/tcp-handshake-fin.pcap")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 4  # header, one flow, a blank line, the footer
    assert lines[0].split()[:7] == ["Proto", "Local", "Address", "Foreign", "Address", "State",
                                    "Pkts"]
    row = lines[1].split()
    assert row[:4] == ["tcp", "192.0.2.10:49152", "198.51.100.20:http", "TIME_WAIT"]
    assert row[4:8] == ["6", "5", "324", "404"] and row[-2:] == ["SF", "ShADadFf"]
    assert lines[3].startswith("1 flows, 11 packets, 728 IP bytes")
    assert r.stderr.strip() == "tracker: 11 frames (all decoded), 1 flows"
    numeric = tracker("read", "-n", "captures/tcp-handshake-fin.pcap").stdout.splitlines()
    assert numeric[1].split()[2] == "198.51.100.20:80"
    server_side = tracker("read", "--local", "198.51.100.0/24",
                          "captures/tcp-handshake-fin.pcap").stdout.splitlines()
    assert server_side[1].split()[1:8] == ["198.51.100.20:http", "192.0.2.10:49152", "CLOSE",
                                            "5", "6", "404", "324"]


def test_read_csv_has_every_documented_column(tmp_path: Path) -> None:
    out = tmp_path / "flows.csv"
    r = tracker("read", "--format", "csv", "-o", str(out), "captures/tcp-port-reuse.pcap")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == [c.name for c in FLOW_COLUMNS]
    assert [(r["conn_state"], r["end_reason"]) for r in rows] == [("SF", "reuse"), ("S1", "eof")]


def test_read_from_standard_input() -> None:
    data = (CAPTURES / "gzip.pcap.gz").read_bytes()
    r = tracker("read", "--format", "csv", "-", stdin=data)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(_text(r.stdout))))
    assert len(rows) == 1 and rows[0]["history"] == "ShADadFf"


def test_packets_count_limits_rows() -> None:
    r = tracker("packets", "-c", "3", "captures/tcp-handshake-fin.pcap")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 4 and lines[1].split()[0] == "1" and lines[3].split()[0] == "3"
    # tcpdump -n -S's words: the SYN, then the SYN-ACK with its ack.
    assert "192.0.2.10:49152 > 198.51.100.20:80 Flags [S], seq " in lines[1]
    assert "Flags [S.], seq " in lines[2] and ", ack " in lines[2]


def test_packets_print_ipv6_by_the_standard_rules() -> None:
    r = tracker("packets", "captures/ipv6-tcp.pcap")
    assert r.returncode == 0, r.stderr
    assert "[2001:db8::10]:49157 > [2001:db8::20]:443 Flags [S]" in r.stdout


def test_truncated_capture_warns_once_and_keeps_the_frames() -> None:
    r = tracker("read", "--format", "csv", "captures/truncated-last-record.pcap")
    assert r.returncode == 0
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("tracker: warning:")]
    assert len(warnings) == 1 and "truncated-last-record.pcap" in warnings[0]
    assert "10 frames" in r.stderr and "Traceback" not in r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows[0]["orig_pkts"] == "5" and rows[0]["resp_pkts"] == "5"


@pytest.mark.parametrize("path, words", [
    ("README.md", ["README.md", "not a capture", "23 20"]),  # '# ' in hex
    ("no/such/file.pcap", ["no/such/file.pcap", "No such file"]),
    ("captures", ["captures"]),
])
def test_bad_input_is_one_clear_line(path: str, words: list[str]) -> None:
    r = tracker("read", path)
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracker: error: "), r.stderr
    for w in words:
        assert w in lines[0]


@pytest.mark.parametrize("args", [["read", "--max-open-flows", "0", "x.pcap"],
                                  ["read", "--tcp-inactivity", "soon", "x.pcap"],
                                  ["read", "--format", "xml", "x.pcap"],
                                  ["frobnicate"]])
def test_bad_options_exit_2_without_traceback(args: list[str]) -> None:
    r = tracker(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "error:" in r.stderr


def test_progress_bar_only_on_a_terminal() -> None:
    import io

    from tracker.report.progress import Progress

    quiet = Progress(io.StringIO())  # a StringIO is not a terminal
    quiet.update(100, 1000, 10)
    assert not quiet.enabled and quiet._bar is None
    shown = io.StringIO()
    bar = Progress(shown, force=True)
    bar.update(500, 1000, 10)
    bar.close()
    assert "reading" in shown.getvalue() and "10 packets" in shown.getvalue()


def test_piped_stderr_gets_no_progress_bar() -> None:
    r = tracker("read", "captures/tcp-handshake-fin.pcap")
    assert "reading" not in r.stderr and "%|" not in r.stderr


def test_csv_times_are_iso_utc_and_duration_seconds() -> None:
    r = tracker("read", "--format", "csv", "captures/nanosecond.pcap")
    row = next(csv.DictReader(io.StringIO(r.stdout)))
    # captures/README.md: request at 1700000000.000000001, response at .123456789.
    assert row["first_ts"] == "2023-11-14T22:13:20.000000001Z"
    assert row["last_ts"] == "2023-11-14T22:13:20.123456789Z"
    assert float(row["duration"]) == pytest.approx(0.123456788)


@pytest.mark.parametrize("name", sorted(p.name for p in CAPTURES.glob("*.pcap*")))
@pytest.mark.parametrize("command", ["packets", "read"])
def test_every_scenario_capture_prints(name: str, command: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from tracker.cli import main  # in-process: a subprocess per capture costs seconds

    assert main([command, str(CAPTURES / name)]) == 0
    assert len(capsys.readouterr().out.splitlines()) >= 2  # header and at least one row
