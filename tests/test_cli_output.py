"""Output that never lies (issue: 'A netstat for captures', point 5), every export format
read back, and rotated captures read as one."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import os
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import tracker
from tests.conftest import CAPTURES, CORPUS, REPO, need_corpus
from tracker.cli import main

PCAP_HEADER = 24
RECORD_HEADER = 16


def run(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracker", *args], check=False, cwd=REPO,
                          capture_output=True, text=True, timeout=120, **kw)  # type: ignore


def records(path: Path) -> tuple[bytes, list[bytes]]:
    """(file header, raw records) of a little-endian microsecond pcap."""
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    out, at = [], PCAP_HEADER
    while at < len(data):
        incl = struct.unpack_from("<I", data, at + 8)[0]
        out.append(data[at:at + RECORD_HEADER + incl])
        at += RECORD_HEADER + incl
    return data[:PCAP_HEADER], out


# --- the output file is complete or untouched, and never an input ---------------------

@pytest.mark.parametrize("bad", ["README.md", "no/such/file.pcap"])
def test_an_unreadable_input_leaves_the_output_untouched(tmp_path: Path, bad: str) -> None:
    out = tmp_path / "flows.csv"
    out.write_text("precious\n")
    r = run("read", "--format", "csv", "-o", str(out), bad)
    assert r.returncode == 1 and r.stderr.startswith("tracker: error: ")
    assert out.read_text() == "precious\n"
    assert [p.name for p in tmp_path.iterdir()] == ["flows.csv"]  # no temporary file left


def test_output_in_a_missing_folder_names_the_output(tmp_path: Path) -> None:
    out = tmp_path / "no-such-folder" / "flows.csv"
    r = run("read", "--format", "csv", "-o", str(out), str(CAPTURES / "tcp-handshake-fin.pcap"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1] == (f"tracker: error: {out}: cannot write the output "
                                         "there: No such file or directory")


def test_output_naming_an_input_is_refused(tmp_path: Path) -> None:
    capture = tmp_path / "x.pcap"
    capture.write_bytes((CAPTURES / "tcp-handshake-fin.pcap").read_bytes())
    before = capture.read_bytes()
    for name in (str(capture), str(tmp_path / "." / "x.pcap")):
        r = run("read", "--format", "csv", "-o", name, str(capture))
        assert r.returncode == 2 and "is an input" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    assert capture.read_bytes() == before


def test_output_replaces_an_existing_file_only_when_done(tmp_path: Path) -> None:
    out = tmp_path / "flows.csv"
    out.write_text("old\n")
    assert main(["read", "--format", "csv", "-o", str(out),
                 str(CAPTURES / "tcp-port-reuse.pcap")]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["conn_state"] for r in rows] == ["SF", "S1"]
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_output_to_a_device_writes_to_it_and_leaves_it_a_device(tmp_path: Path) -> None:
    """-o /dev/null must write into the device, never rename a file over it (tested on a
    null device of the test's own, so that a regression cannot break the machine's)."""
    if os.geteuid() == 0:
        null = tmp_path / "null"
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        assert main(["read", "--format", "csv", "-o", str(null),
                     str(CAPTURES / "tcp-port-reuse.pcap")]) == 0
        assert stat.S_ISCHR(os.stat(null).st_mode)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    assert main(["read", "--format", "csv", "-o", str(fifo),
                 str(CAPTURES / "tcp-port-reuse.pcap")]) == 0
    out, _ = reader.communicate(timeout=30)
    assert out.decode().splitlines()[0].startswith("flow_id,") and stat.S_ISFIFO(
        os.stat(fifo).st_mode)


def test_ctrl_c_writes_everything_read_and_exits_130(tmp_path: Path) -> None:
    """SIGINT to a real process reading standard input: the flow read so far is written,
    open, with end_reason interrupted, and the output file is complete."""
    header, recs = records(CAPTURES / "tcp-handshake-fin.pcap")
    out = tmp_path / "flows.csv"
    proc = subprocess.Popen([sys.executable, "-m", "tracker", "read", "--format", "csv", "-o",
                             str(out), "-"], cwd=REPO, stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(header + b"".join(recs[:5]))
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".part") for p in tmp_path.iterdir()):  # reading now
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.stdin.write(b"".join(recs[5:]))
    proc.stdin.close()
    assert proc.wait(timeout=60) == 130
    assert proc.stderr is not None and b"interrupted" in proc.stderr.read()
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 1
    # captures/README.md: 6 packets from the client, 5 from the server, ShADadFf.
    assert (rows[0]["orig_pkts"], rows[0]["resp_pkts"], rows[0]["history"]) == ("6", "5",
                                                                                 "ShADadFf")
    assert rows[0]["end_reason"] == "interrupted"
    assert [p.name for p in tmp_path.iterdir()] == ["flows.csv"]


def test_a_corrupt_record_mid_file_keeps_everything_before_it(tmp_path: Path) -> None:
    """tcp-port-reuse.pcap with record 8 (the second connection's SYN) claiming 300 MiB:
    the first connection (5 + 3 packets, SF, captures/README.md) is written, open at that
    point, so with end_reason error; one line names the file and the byte offset; exit 1."""
    header, recs = records(CAPTURES / "tcp-port-reuse.pcap")
    broken = bytearray(recs[8])
    struct.pack_into("<I", broken, 8, 300 << 20)
    capture = tmp_path / "broken.pcap"
    capture.write_bytes(header + b"".join(recs[:8]) + bytes(broken) + b"".join(recs[9:]))
    offset = PCAP_HEADER + sum(len(r) for r in recs[:8])
    out = tmp_path / "flows.csv"
    r = run("read", "--format", "csv", "-o", str(out), str(capture))
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and str(capture) in errors[0] and f"byte {offset}" in errors[0]
    assert "Traceback" not in r.stderr
    rows = list(csv.DictReader(out.open()))
    assert [(x["orig_pkts"], x["resp_pkts"], x["conn_state"], x["end_reason"]) for x in rows] \
        == [("5", "3", "SF", "error")]


# --- every format reads back -----------------------------------------------------------

def test_parquet_and_csv_read_back_into_the_same_frame(tmp_path: Path) -> None:
    flows = tracker.read_flows(CAPTURES / "tcp-port-reuse.pcap")
    assert main(["read", "--format", "parquet", "-o", str(tmp_path / "f.parquet"),
                 str(CAPTURES / "tcp-port-reuse.pcap")]) == 0
    back = pd.read_parquet(tmp_path / "f.parquet")
    pd.testing.assert_frame_equal(back, flows, check_categorical=False)
    assert dict(back.dtypes.astype(str)) == dict(flows.dtypes.astype(str))
    assert main(["read", "--format", "csv", "-o", str(tmp_path / "f.csv"),
                 str(CAPTURES / "tcp-port-reuse.pcap")]) == 0
    text = pd.read_csv(tmp_path / "f.csv")
    assert list(text.columns) == list(flows.columns)
    for column in ("orig_pkts", "resp_ip_bytes", "orig_port"):
        assert text[column].tolist() == flows[column].tolist()
    assert text["conn_state"].tolist() == ["SF", "S1"]
    assert (pd.to_datetime(text["first_ts"]) == flows["first_ts"]).all()


def _three_hours(path: Path) -> Path:
    """Three UDP datagrams, each its own flow, first seen on 2026-12-01 at 23:59:59 and
    on 2026-12-02 at 00:00:01 and 13:30:00 UTC."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    frames = []
    for port, when in ((1001, 1796169599), (1002, 1796169601), (1003, 1796218200)):
        frame = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=port, dport=53)
        frame.time = when
        frames.append(frame)
    wrpcap(str(path), frames)
    return path


@pytest.mark.parametrize("folder", ["existing", "new/"])
@pytest.mark.parametrize("jobs", [[], ["--jobs", "1"]])
def test_parquet_into_a_folder_is_a_dataset_by_date_and_hour(tmp_path: Path, folder: str,
                                                             jobs: list[str]) -> None:
    """-o naming a folder (one that exists, or a new one with a trailing /) with
    --format parquet: every flow in date=YYYY-MM-DD/hour=HH of its first packet (UTC),
    as Hive and Dask read a dataset; sequential and on Dask alike."""
    capture = _three_hours(tmp_path / "hours.pcap")
    if folder == "existing":
        (tmp_path / folder).mkdir()
    out = f"{tmp_path}/{folder}"  # a Path would drop the trailing /
    r = run("read", "-q", *jobs, "--format", "parquet", "-o", out, str(capture))
    assert r.returncode == 0, r.stderr
    dataset = tmp_path / folder.rstrip("/")
    parts = sorted(str(p.parent.relative_to(dataset)) for p in dataset.rglob("*.parquet"))
    assert parts == ["date=2026-12-01/hour=23", "date=2026-12-02/hour=00",
                     "date=2026-12-02/hour=13"]
    back = pd.read_parquet(dataset).sort_values("orig_port")
    assert back["orig_port"].tolist() == [1001, 1002, 1003]
    assert back["date"].astype(str).tolist() == ["2026-12-01", "2026-12-02", "2026-12-02"]
    assert back["hour"].astype(int).tolist() == [23, 0, 13]
    assert not list(dataset.glob(".tracker-*"))  # the staging folder is gone


def test_a_folder_takes_only_a_parquet_dataset(tmp_path: Path) -> None:
    """A folder as -o for one output file (csv), or with --top, is refused in one line;
    a new folder that the read fails before writing to is not left behind."""
    capture = str(CAPTURES / "tcp-port-reuse.pcap")
    r = run("read", "-q", "--format", "csv", "-o", f"{tmp_path}/new/", capture)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1].startswith(f"tracker: error: {tmp_path}/new/: a folder")
    r = run("read", "-q", "--format", "parquet", "--top", "3", "-o", str(tmp_path), capture)
    assert r.returncode == 2
    assert "--top makes one table: give -o FILE, not a folder" in r.stderr
    r = run("read", "-q", "--format", "parquet", "-o", f"{tmp_path}/new/", "README.md")
    assert r.returncode == 1 and "README.md: not a capture" in r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("capture", sorted(p.name for p in CAPTURES.glob("*.pcap*")))
def test_parquet_of_every_capture_reads_back(capture: str, tmp_path: Path) -> None:
    """Most captures end no flow in their first batch: the file's first chunk has no rows
    (and no tunnel_parents to type the column by); it was a traceback for them."""
    flows = tracker.read_flows(CAPTURES / capture)
    assert main(["read", "-q", "--format", "parquet", "-o", str(tmp_path / "f.parquet"),
                 str(CAPTURES / capture)]) == 0
    back = pd.read_parquet(tmp_path / "f.parquet")
    assert back["flow_id"].tolist() == flows["flow_id"].tolist()
    assert back["history"].tolist() == flows["history"].tolist()


def test_parquet_chunks_with_and_without_tunnel_parents(tmp_path: Path) -> None:
    """Chunks as the writer gets them: none, flows without a tunnel parent (pyarrow types
    the column a list of null), then flows inside tunnels (lists of ids)."""
    from tracker.report.writers import ParquetWriter

    plain = tracker.read_flows(CAPTURES / "office.pcap")
    inner = plain.iloc[:2].copy()
    inner["tunnel_parents"] = [(7,), (3, 7)]  # as the flows of a tunnel inside another
    chunks = [plain.iloc[:0], plain.iloc[2:40], inner]
    with (tmp_path / "f.parquet").open("wb") as out:
        writer = ParquetWriter(out)
        for chunk in chunks:
            writer.write(chunk)
        writer.close()
    back = pd.read_parquet(tmp_path / "f.parquet")
    assert [tuple(p) for p in back["tunnel_parents"]] == [()] * 38 + [(7,), (3, 7)]
    assert back["flow_id"].tolist() == pd.concat(chunks)["flow_id"].tolist()


def test_json_lines_carry_the_columns(tmp_path: Path) -> None:
    out = tmp_path / "f.json"
    assert main(["read", "--format", "json", "-o", str(out),
                 str(CAPTURES / "icmp-echo.pcap")]) == 0
    rows = pd.read_json(out, lines=True)
    assert list(rows.columns) == list(tracker.describe_columns("flows")["name"])
    assert rows["proto"].tolist() == ["icmp"] and rows["history"].isna().all()


def test_packets_parquet_reads_back(tmp_path: Path) -> None:
    packets = tracker.read_packets(CAPTURES / "ipv6-tcp.pcap")
    out = tmp_path / "p.parquet"
    assert main(["packets", "--format", "parquet", "-o", str(out),
                 str(CAPTURES / "ipv6-tcp.pcap")]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out), packets, check_categorical=False)


def test_zeek_conn_log_reads_back_with_zat(tmp_path: Path) -> None:
    """zat's LogToDataFrame (Zeek's log format reader) gives the flows' rows and values."""
    from zat.log_to_dataframe import LogToDataFrame

    path = CAPTURES / "tcp-port-reuse.pcap"
    flows = tracker.read_flows(path)
    out = tmp_path / "conn.log"
    assert main(["read", "--format", "zeek", "-o", str(out), str(path)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "#separator \\x09" and lines[4] == "#path\tconn"
    assert lines[-1].startswith("#close\t")
    log = LogToDataFrame().create_dataframe(str(out)).reset_index()
    assert len(log) == len(flows)
    assert log["uid"].str.match(r"^C[0-9A-Za-z]{17}$").all() and log["uid"].is_unique
    assert log["id.orig_h"].astype(str).tolist() == flows["orig_addr"].astype(str).tolist()
    assert log["id.resp_p"].astype(int).tolist() == flows["resp_port"].tolist()
    assert log["conn_state"].astype(str).tolist() == ["SF", "S1"]
    assert log["history"].astype(str).tolist() == ["ShADdFf", "ShAD"]
    assert log["orig_pkts"].astype(int).tolist() == flows["orig_pkts"].tolist()
    assert log["resp_ip_bytes"].astype(int).tolist() == flows["resp_ip_bytes"].tolist()
    assert log["proto"].astype(str).tolist() == ["tcp", "tcp"]
    us = pd.Timedelta(1, "us")  # Zeek writes microseconds
    ts = (pd.to_datetime(log["ts"]) - pd.Timestamp(0)) // us
    assert ts.tolist() == ((flows["first_ts"] - pd.Timestamp(0, tz="UTC")) // us).tolist()


# --- rotated captures are one capture --------------------------------------------------

def _write_parts(tmp_path: Path, path: Path, cuts: list[int]) -> list[Path]:
    header, recs = records(path)
    bounds = [0, *cuts, len(recs)]
    parts = []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        data = header + b"".join(recs[a:b])
        part = tmp_path / (f"part{i}.pcap.gz" if i == 1 else f"part{i}.pcap")
        part.write_bytes(gzip.compress(data) if i == 1 else data)  # mixed formats
        parts.append(part)
    return parts


def test_a_connection_spanning_files_is_one_flow(tmp_path: Path) -> None:
    parts = _write_parts(tmp_path, CAPTURES / "tcp-handshake-fin.pcap", [3, 7])
    whole = tracker.read_flows(CAPTURES / "tcp-handshake-fin.pcap")
    split = tracker.read_flows([parts[2], parts[0], parts[1]])  # any order: by first time
    pd.testing.assert_frame_equal(split, whole)
    assert len(split) == 1 and split["orig_pkts"].tolist() == [6]


def test_files_are_ordered_by_a_first_frame_longer_than_the_peek(tmp_path: Path) -> None:
    """The order of rotated files comes from their first frames, read a few KB at a time
    (rotated.PEEK_BYTES): a first record of 9,000 bytes (a jumbo frame) is read whole."""
    from tracker.sources.rotated import PEEK_BYTES, first_timestamp, open_captures

    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # Ethernet

    def capture(name: str, seconds: int, size: int) -> Path:
        record = struct.pack("<IIII", seconds, 250, size, size) + bytes(size)
        path = tmp_path / name
        path.write_bytes(header + record + record)
        return path

    assert 9000 > PEEK_BYTES
    late = capture("a.pcap", 1_700_000_100, 60)
    early = capture("b.pcap", 1_700_000_000, 9000)
    assert first_timestamp(early) == 1_700_000_000_000_250_000
    assert open_captures([late, early]).names == [str(early), str(late)]


@pytest.mark.corpus
def test_a_corpus_trace_split_in_three_gives_the_flows_of_the_whole(tmp_path: Path) -> None:
    need_corpus()
    path = CORPUS / "zeek" / "wikipedia-default" / "trace.pcap"
    _, recs = records(path)
    cuts = [len(recs) // 3, 2 * len(recs) // 3]
    whole = tracker.read_flows(path)
    packets = tracker.read_packets(path)
    # The cuts fall inside connections: their flows have packets on both sides of a cut.
    spanning = packets.groupby("flow_id")["frame"].agg(["min", "max"])
    assert ((spanning["min"] <= cuts[0]) & (spanning["max"] > cuts[0])).any()
    parts = _write_parts(tmp_path, path, cuts)
    split = tracker.read_flows(parts)
    pd.testing.assert_frame_equal(split, whole, check_categorical=False)
    r = run("read", "--format", "csv", "-q", *map(str, parts))
    assert r.returncode == 0, r.stderr
    assert len(list(csv.DictReader(io.StringIO(r.stdout)))) == len(whole)


def test_standard_input_cannot_join_other_files() -> None:
    r = run("read", "-", "captures/tcp-port-reuse.pcap")
    assert r.returncode == 2 and "standard input" in r.stderr
    assert os.path.exists(REPO / "captures" / "tcp-port-reuse.pcap")


# --- filters: tcpdump's before the flows, pandas' after --------------------------------

def test_tcpdump_filter_on_read_and_packets(tmp_path: Path) -> None:
    """tcp-port-reuse.pcap has 4 SYN or SYN-ACK segments (captures/README.md: two
    handshakes): with only them, each connection is one S and one h."""
    path = str(CAPTURES / "tcp-port-reuse.pcap")
    expr = "tcp[tcpflags] & tcp-syn != 0"
    out = tmp_path / "p.csv"
    assert main(["packets", "-f", expr, "--format", "csv", "-o", str(out), path]) == 0
    assert pd.read_csv(out)["frame"].tolist() == [1, 2, 9, 10]
    assert main(["read", path, "--format", "csv", "-o", str(out), "-f", expr]) == 0  # any order
    rows = pd.read_csv(out)
    assert rows["history"].tolist() == ["Sh", "Sh"] and rows["orig_pkts"].tolist() == [1, 1]
    flows = tracker.read_flows(path, filter=expr)
    assert flows["history"].tolist() == ["Sh", "Sh"]


def test_a_bad_filter_or_query_is_a_usage_error() -> None:
    r = run("read", "-f", "tcp prt 80", "captures/tcp-port-reuse.pcap")
    assert r.returncode == 2 and "syntax error" in r.stderr and "usage:" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("read", "--query", "conn_stat == 'SF'", "captures/tcp-port-reuse.pcap")
    assert r.returncode == 2 and "conn_stat" in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(tracker.OptionError, match="syntax error"):
        tracker.read_packets(CAPTURES / "tcp-port-reuse.pcap", filter="tcp prt 80")


def test_query_keeps_the_flows_it_matches(tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    path = str(CAPTURES / "tcp-port-reuse.pcap")
    assert main(["read", "--query", "conn_state == 'S1'", "--format", "csv", "-o", str(out),
                 path]) == 0
    rows = pd.read_csv(out)
    assert rows["conn_state"].tolist() == ["S1"] and rows["orig_pkts"].tolist() == [3]


def test_query_sort_and_top_on_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    """--query, --sort bytes and --top 5 on the netstat table (made from the records, no
    DataFrame): the rows of the library's frame, queried and sorted by pandas."""
    path = CAPTURES / "office.pcap"
    flows = tracker.read_flows(path)
    want = (flows.query("proto == 'udp'")
            .assign(total=lambda d: d["orig_ip_bytes"] + d["resp_ip_bytes"])
            .sort_values(["total", "flow_id"], ascending=[False, True]).head(5))
    assert main(["read", "--query", "proto == 'udp'", "--sort", "bytes", "--top", "5", "-n",
                 "-q", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines[1:6]]
    assert lines[6] == "" and lines[7].startswith("5 flows, ")
    assert [r[0] for r in rows] == ["udp"] * 5
    assert [(int(r[6]), int(r[7])) for r in rows] == list(zip(
        want["orig_ip_bytes"].tolist(), want["resp_ip_bytes"].tolist(), strict=True))
