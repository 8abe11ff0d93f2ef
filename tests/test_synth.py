"""The benchmark's synthetic capture generator (benchmarks/synth.py).

The captures are read back with a small struct-based pcap reader written here,
independently of the generator, and every truth row is recomputed from the
packets. Expected Zeek states come from a hand-written reading of the packets'
flags (SEMANTICS.md section 4), not from the generator's tables.
"""

from __future__ import annotations

import csv
import hashlib
import ipaddress
import re
import socket
import struct
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SYNTH = REPO / "benchmarks" / "synth.py"
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10


def run_synth(tmp: Path, name: str, *args: str) -> tuple[Path, Path, str]:
    """Run the generator; returns the pcap, the truth CSV and its report line."""
    pcap, truth = tmp / f"{name}.pcap", tmp / f"{name}.csv"
    res = subprocess.run(
        [sys.executable, str(SYNTH), "-o", str(pcap), "--truth", str(truth), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return pcap, truth, res.stderr


@dataclass
class Flow:
    """What the reader saw of one 5-tuple."""

    a: tuple[str, int]
    proto: int
    pkts: list[int] = field(default_factory=lambda: [0, 0])
    wire: list[int] = field(default_factory=lambda: [0, 0])
    ip: list[int] = field(default_factory=lambda: [0, 0])
    events: list[tuple[int, int, int]] = field(default_factory=list)  # (dir, tcp flags, ts_us)


def ones_sum(data: bytes) -> int:
    """RFC 1071 ones-complement sum, folded to 16 bits."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def read_pcap(path: Path) -> tuple[dict[tuple, Flow], list[int], int]:
    """Flows by canonical 5-tuple, all timestamps (us) in file order, and the snaplen."""
    data = path.read_bytes()
    magic, major, minor, _, _, snaplen, link = struct.unpack_from("<IHHiIII", data, 0)
    assert (magic, major, minor, link) == (0xA1B2C3D4, 2, 4, 1)
    flows: dict[tuple, Flow] = {}
    times: list[int] = []
    off = 24
    while off < len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, off)
        frame = data[off + 16 : off + 16 + incl]
        assert len(frame) == incl == min(orig, snaplen) and orig >= 60
        off += 16 + incl
        times.append(sec * 1_000_000 + usec)
        etype = struct.unpack_from("!H", frame, 12)[0]
        if etype == 0x0800:
            assert frame[14] == 0x45 and ones_sum(frame[14:34]) == 0xFFFF, "IPv4 header checksum"
            ip_len, proto = struct.unpack_from("!H", frame, 16)[0], frame[23]
            src, dst, l4 = (
                socket.inet_ntop(socket.AF_INET, frame[26:30]),
                socket.inet_ntop(socket.AF_INET, frame[30:34]),
                34,
            )
        else:
            assert etype == 0x86DD and frame[14] >> 4 == 6
            ip_len, proto = struct.unpack_from("!H", frame, 18)[0] + 40, frame[20]
            src, dst, l4 = (
                socket.inet_ntop(socket.AF_INET6, frame[22:38]),
                socket.inet_ntop(socket.AF_INET6, frame[38:54]),
                54,
            )
        assert orig == max(60, 14 + ip_len)
        sport, dport = struct.unpack_from("!HH", frame, l4)
        flags = frame[l4 + 13] if proto == 6 else 0
        key = (proto, *sorted([(src, sport), (dst, dport)]))
        fl = flows.setdefault(key, Flow(a=(src, sport), proto=proto))
        d = 0 if (src, sport) == fl.a else 1
        fl.pkts[d] += 1
        fl.wire[d] += orig
        fl.ip[d] += ip_len
        fl.events.append((d, flags, times[-1]))
    return flows, times, snaplen


def read_truth(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def norm(addr: str) -> str:
    return str(ipaddress.ip_address(addr))


def expected_state(fl: Flow) -> str:
    """Zeek conn_state read by hand from the flags, for the shapes the generator makes."""
    ev = fl.events
    answered = any(d == 1 for d, _, _ in ev)
    if fl.proto == 17:
        return "SF" if answered else "S0"
    if not answered:
        return "S0"  # only the originator's SYN(s)
    if len(ev) == 2 and ev[1][1] & RST:
        return "REJ"  # SYN answered by RST|ACK
    rsts = [d for d, f, _ in ev if f & RST]
    if rsts:
        return "RSTO" if rsts[0] == 0 else "RSTR"
    fins = {d for d, f, _ in ev if f & FIN}
    return "SF" if fins == {0, 1} else "S1"


def check_truth(pcap: Path, truth: Path) -> tuple[dict[tuple, Flow], list[dict[str, str]]]:
    """Every truth row equals the counts recomputed from the packets, and vice versa."""
    flows, times, _ = read_pcap(pcap)
    rows = read_truth(truth)
    assert times == sorted(times), "records are not in time order"
    assert len(rows) == len(flows), "a 5-tuple is shared by two flows, or a flow is missing"
    for r in rows:
        a, b = (norm(r["a_addr"]), int(r["a_port"])), (norm(r["b_addr"]), int(r["b_port"]))
        fl = flows[(int(r["proto"]), *sorted([a, b]))]
        assert fl.a == a, "side a must be the sender of the first packet"
        got = [fl.pkts[0], fl.wire[0], fl.pkts[1], fl.wire[1], fl.ip[0], fl.ip[1]]
        want = [
            int(r[k])
            for k in (
                "a2b_pkts",
                "a2b_bytes",
                "b2a_pkts",
                "b2a_bytes",
                "a2b_ip_bytes",
                "b2a_ip_bytes",
            )
        ]
        assert got == want, r
        assert r["conn_state"] == expected_state(fl), (r, fl.events)
        gaps = [t1 - t0 for (_, _, t0), (_, _, t1) in zip(fl.events, fl.events[1:])]
        assert max(gaps, default=0) < 60_000_000, "a gap of 60 s would split the flow"
    return flows, rows


def test_default_mix_truth_matches_packets(tmp_path: Path) -> None:
    pcap, truth, _ = run_synth(tmp_path, "std", "--packets", "6000", "--seed", "3")
    flows, rows = check_truth(pcap, truth)
    kinds = {r["kind"] for r in rows}
    assert {"tcp-fin", "tcp-rst", "tcp-rejected", "tcp-syn-only", "udp-dns", "udp-stream"} <= kinds
    assert any(":" in r["a_addr"] for r in rows) and any("." in r["a_addr"] for r in rows)
    assert {"SF", "S0", "REJ", "RSTO", "RSTR"} <= {r["conn_state"] for r in rows}
    assert (
        6000 <= sum(sum(f.pkts) for f in flows.values()) < 6000 + 600
    )  # whole flows, at most 600 each


def test_short_flows_are_a_third_control_segments(tmp_path: Path) -> None:
    pcap, truth, _ = run_synth(tmp_path, "short", "--packets", "5000", "--short-flows")
    flows, _ = check_truth(pcap, truth)
    events = [f for fl in flows.values() for _, f, _ in fl.events]
    control = sum(1 for f in events if f & (SYN | FIN | RST))
    assert control / len(events) >= 1 / 3
    assert len(flows) > 5000 / 15


def test_syn_flood(tmp_path: Path) -> None:
    pcap, truth, _ = run_synth(tmp_path, "flood", "--syn-flood", "3000", "--chunk-flows", "700")
    flows, rows = check_truth(pcap, truth)
    assert len(flows) == 3000
    assert all(fl.events == [(0, SYN, fl.events[0][2])] for fl in flows.values())
    assert {(r["b_addr"], r["b_port"]) for r in rows} == {("203.0.113.80", "80")}
    assert {r["conn_state"] for r in rows} == {"S0"}


def test_port_scan(tmp_path: Path) -> None:
    pcap, truth, _ = run_synth(tmp_path, "scan", "--port-scan", "--scan-ports", "2000")
    flows, rows = check_truth(pcap, truth)
    assert {int(r["b_port"]) for r in rows} == set(range(1, 2001))
    shapes = {tuple((d, f) for d, f, _ in fl.events) for fl in flows.values()}
    assert shapes == {((0, SYN),), ((0, SYN), (1, RST | ACK)), ((0, SYN), (1, SYN | ACK), (0, RST))}
    by_kind: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        by_kind[r["kind"]].add(r["conn_state"])
    assert by_kind == {"scan-open": {"RSTO"}, "scan-closed": {"REJ"}, "scan-filtered": {"S0"}}


def test_deterministic_given_seed(tmp_path: Path) -> None:
    digest = []
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        pcap, truth, _ = run_synth(tmp_path, name, "--packets", "3000", "--seed", seed)
        digest.append(hashlib.sha256(pcap.read_bytes() + truth.read_bytes()).hexdigest())
    assert digest[0] == digest[1] != digest[2]


def test_snaplen_cuts_records_not_counts(tmp_path: Path) -> None:
    pcap, truth, _ = run_synth(tmp_path, "snap", "--packets", "2000", "--snaplen", "68")
    _, _, snaplen = read_pcap(pcap)
    assert snaplen == 68  # just covers an IPv6 TCP flags byte
    check_truth(pcap, truth)


def held_packets(stderr: str) -> int:
    """The generator's report of the most packets it held at once."""
    m = re.search(r"at most (\d+) packets held", stderr)
    assert m, stderr
    return int(m.group(1))


def test_memory_follows_open_flows_not_file_size(tmp_path: Path) -> None:
    # A flood has one packet per flow: nothing is held past its chunk.
    held = [
        held_packets(run_synth(tmp_path, f"f{n}", "--syn-flood", n, "--chunk-flows", "500")[2])
        for n in ("4000", "16000")
    ]
    assert held == [500, 500]
    # Short flows: about a thousand flows are open at any time, whatever the file size.
    held = [
        held_packets(
            run_synth(tmp_path, f"s{n}", "--packets", n, "--short-flows", "--chunk-flows", "100")[2]
        )
        for n in ("15000", "60000")
    ]
    assert held[1] < 1.5 * held[0] and held[1] < 60000 / 5


def test_tcp_checksums_are_valid(tmp_path: Path) -> None:
    pcap, _, _ = run_synth(tmp_path, "ck", "--packets", "1500", "--snaplen", "2000")
    data = pcap.read_bytes()
    off, checked = 24, 0
    while off < len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        if frame[12:14] != b"\x08\x00":
            continue
        ip_len, proto = struct.unpack_from("!H", frame, 16)[0], frame[23]
        seg = frame[34 : 14 + ip_len]
        pseudo = frame[26:34] + struct.pack("!BBH", 0, proto, len(seg))
        assert ones_sum(pseudo + seg) == 0xFFFF
        checked += 1
    assert checked > 1000
