"""Issue 3 acceptance: every flow of a synthetic capture equals its exact truth table.

Two generators write a capture and its truth, one row per flow:

- ../shared/tools/gen_pcap.py: per-direction packets and wire bytes. Its side a
  is NOT the first sender: it writes the canonical lower endpoint first (by
  address bytes, then port; gen_pcap.py, its ``--truth`` block).
- benchmarks/synth.py: also IP bytes and the Zeek conn_state; side a sent the
  flow's first packet and is always the Zeek originator there.

Both use every 5-tuple once, so each truth row is one flow. The counters are
compared per socket (what the lower socket sent, what the higher one sent),
which does not depend on who is the originator; the orientation is checked
on its own against the first packet of each flow, found by a small pcap
reader written here (not the tracker's): our originator sent that packet
unless the flow was flipped, which Zeek's history marks with ``^``.
"""

from __future__ import annotations

import ipaddress
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conformance.streams_compare import KEY, canonical, proto_numbers

REPO = Path(__file__).resolve().parents[2]
GEN_PCAP = REPO.parent / "shared" / "tools" / "gen_pcap.py"
SYNTH = REPO / "benchmarks" / "synth.py"
ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD  # IEEE 802 EtherTypes


def generate(script: Path, tmp: Path, *args: str) -> tuple[Path, pd.DataFrame]:
    """Run a generator into ``tmp``; the capture and its truth table."""
    if not script.exists():
        pytest.skip(f"the generator is absent: expected it at {script}")
    pcap, truth = tmp / "synthetic.pcap", tmp / "truth.csv"
    subprocess.run([sys.executable, str(script), "-o", str(pcap), "--truth", str(truth),
                    "--quiet", *args], check=True, timeout=120, capture_output=True)
    return pcap, pd.read_csv(truth, dtype={"a_addr": str, "b_addr": str})


def first_senders(pcap: Path) -> dict[tuple[int, str, int, str, int], tuple[str, int]]:
    """(proto, lower socket, higher socket) -> the socket that sent the 5-tuple's first frame.

    A classic little-endian pcap of Ethernet frames (both generators write one;
    the snaplen keeps the IP and transport headers whole).
    """
    data = pcap.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1", "expected a little-endian microsecond pcap"
    first: dict[tuple[int, str, int, str, int], tuple[str, int]] = {}
    pos = 24  # pcap global header
    while pos < len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        if ethertype == ETH_IPV4:  # RFC 791: IHL, protocol at 9, addresses at 12 and 16
            ihl = (frame[14] & 0x0F) * 4
            proto, src, dst = frame[23], frame[26:30], frame[30:34]
            l4 = 14 + ihl
        elif ethertype == ETH_IPV6:  # RFC 8200: next header at 6, addresses at 8 and 24
            proto, src, dst = frame[20], frame[22:38], frame[38:54]
            l4 = 54
        else:
            continue
        sport, dport = struct.unpack_from("!HH", frame, l4)
        a = (str(ipaddress.ip_address(src)), sport)
        b = (str(ipaddress.ip_address(dst)), dport)
        lo, hi = sorted([a, b])
        first.setdefault((proto, *lo, *hi), a)
    return first


def read(pcap: Path) -> pd.DataFrame:
    """The tracker's flows of the capture with the default options, but for Zeek's DNS and
    NTP analyzers: the generators' random payloads on those ports are no messages, and a
    flip they would cause counts one packet for the other side (ZEEK-FACTS 9.3), where the
    truth counts each packet for its sender."""
    import tracker

    return tracker.read_flows(pcap, dns_ports=frozenset(), ntp_ports=frozenset())


# measure -> (truth column suffix, our column suffix); streams_compare names the measures.
GEN_PCAP_MEASURES = {"pkts": ("pkts", "pkts"), "wire": ("bytes", "wire_bytes")}
SYNTH_MEASURES = {**GEN_PCAP_MEASURES, "ip": ("ip_bytes", "ip_bytes")}


def _counts(df: pd.DataFrame, prefix: str, suffixes: dict[str, str]) -> dict[str, np.ndarray]:
    """Counter columns by measure name; zeros for a measure the table lacks."""
    return {m: df[f"{prefix}{suffixes[m]}"].to_numpy() if m in suffixes
            else np.zeros(len(df), np.int64) for m in ("pkts", "ip", "wire")}


def side_by_side(flows: pd.DataFrame, truth: pd.DataFrame,
                 measures: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Each flow beside the truth row of its 5-tuple (outer join, ``_merge`` says which
    side has it), counters per socket: ``up_*`` sent by the lower socket, ``down_*`` by
    the higher one; the truth's with the suffix ``_truth``."""
    t_sfx = {m: t for m, (t, _) in measures.items()}
    o_sfx = {m: o for m, (_, o) in measures.items()}
    zeros = np.zeros(len(flows), np.int64)
    mine = canonical(proto_numbers(flows["proto"]), flows["orig_addr"], flows["orig_port"],
                     flows["resp_addr"], flows["resp_port"], zeros,
                     _counts(flows, "orig_", o_sfx), _counts(flows, "resp_", o_sfx),
                     grouped=False)
    for c in ("orig_addr", "orig_port", "history", "conn_state"):
        mine[c] = flows[c].astype(str).to_numpy() if c != "orig_port" else flows[c].to_numpy()
    theirs = canonical(truth["proto"].to_numpy(), truth["a_addr"], truth["a_port"],
                       truth["b_addr"], truth["b_port"], np.zeros(len(truth), np.int64),
                       _counts(truth, "a2b_", t_sfx), _counts(truth, "b2a_", t_sfx),
                       grouped=False)
    for c in ("a_addr", "a_port", "kind", "conn_state"):
        if c in truth:
            theirs[c] = truth[c].to_numpy()
    return mine.merge(theirs, on=KEY, how="outer", suffixes=("", "_truth"), indicator=True)


def check_against_truth(pcap: Path, truth: pd.DataFrame,
                        measures: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Every flow found once, with the truth's per-socket counters; the orientation
    follows the first packet unless flipped. Returns the joined table."""
    flows = read(pcap)
    assert len(flows) == len(truth), f"{len(flows)} flows, the truth has {len(truth)}"
    both = side_by_side(flows, truth, measures)
    unmatched = both[both["_merge"] != "both"]
    assert unmatched.empty, unmatched[[*KEY, "_merge"]].head(10)
    for m in measures:
        for c in (f"up_{m}", f"down_{m}"):
            bad = both[both[c] != both[f"{c}_truth"]]
            assert bad.empty, bad[[*KEY, c, f"{c}_truth"]].head(10)
    _check_orientation(pcap, both)
    return both


def _check_orientation(pcap: Path, both: pd.DataFrame) -> None:
    """Our originator sent the flow's first frame, or the history shows a flip (^)."""
    first = first_senders(pcap)
    sender = [first[(p, la, lp, ha, hp)] for p, la, lp, ha, hp in
              both[["proto", "lo_addr", "lo_port", "hi_addr", "hi_port"]].itertuples(index=False)]
    orig_sent_first = np.array([s == (a, int(p)) for s, a, p in
                                zip(sender, both["orig_addr"], both["orig_port"], strict=True)])
    flipped = both["history"].str.contains("^", regex=False).to_numpy()
    bad = both[orig_sent_first == flipped]
    assert bad.empty, bad[[*KEY, "orig_addr", "orig_port", "history"]].head(10)


@pytest.mark.parametrize("args", [
    ("--packets", "20000", "--seed", "1"),
    ("--packets", "20000", "--seed", "2", "--ipv6-frac", "0.5", "--udp-frac", "0.5"),
], ids=["default-mix", "ipv6-udp-heavy"])
def test_gen_pcap_flows_equal_the_truth(tmp_path: Path, args: tuple[str, ...]) -> None:
    pcap, truth = generate(GEN_PCAP, tmp_path, *args)
    assert len(truth) > 200  # a real mix, not a handful of flows
    check_against_truth(pcap, truth, GEN_PCAP_MEASURES)


@pytest.mark.parametrize("args", [
    ("--packets", "20000"),
    ("--packets", "20000", "--short-flows", "--seed", "3"),
    ("--port-scan", "--scan-ports", "2000"),
    ("--syn-flood", "3000"),
], ids=["default", "short-flows", "port-scan", "syn-flood"])
def test_synth_flows_equal_the_truth(tmp_path: Path, args: tuple[str, ...]) -> None:
    """benchmarks/synth.py: also IP bytes and conn_state, and side a is our originator."""
    pcap, truth = generate(SYNTH, tmp_path, *args)
    both = check_against_truth(pcap, truth, SYNTH_MEASURES)
    a_is_orig = (both["orig_addr"] == both["a_addr"].map(_norm)) & \
        (both["orig_port"] == both["a_port"])
    assert a_is_orig.all(), both.loc[~a_is_orig, [*KEY, "orig_addr", "a_addr"]].head(10)
    bad = both[both["conn_state"] != both["conn_state_truth"]]
    assert bad.empty, bad[[*KEY, "kind", "history", "conn_state", "conn_state_truth"]].head(10)


def _norm(addr: str) -> str:
    return str(ipaddress.ip_address(addr))
