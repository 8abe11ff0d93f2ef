"""Per-socket-pair totals of read_flows against tshark_streams.csv and nfstream_generated.csv.

Each tool splits a socket pair into flows by its own rules (port reuse, FIN/RST,
timeouts), so the flows are summed per unordered socket pair before comparing:
packets, IP bytes and wire bytes in total and per direction (from the lower to
the higher socket, and back). The two sockets are ordered by (address text,
port), the same way on both sides, so directions line up whoever opened the
connection.

- tshark: ``tcp.stream`` / ``udp.stream`` totals; VLAN is not in its key, so we
  run with the default options (VLAN not in the key either). Only TCP and UDP.
- NFStream: keyed on the VLAN id (``vlan_in_key=True`` here, untagged = 0) and
  on the IP protocol; ICMP and other protocols carry ports 0 there, so our ICMP
  type/code "ports" are zeroed before summing.

streams_explain.py explains the pairs that differ and prints the agreement rates.
"""

from __future__ import annotations

import ipaddress
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

KEY = ["proto", "lo_addr", "lo_port", "hi_addr", "hi_port", "vlan"]
MEASURES = ("pkts", "ip", "wire")  # packets, IP bytes, wire (frame) bytes
DIRECTED = [f"{d}_{m}" for d in ("up", "down") for m in MEASURES]  # up: lo -> hi
TOTALS = [f"tot_{m}" for m in MEASURES]
PROTO_NUMBER = {"tcp": 6, "udp": 17, "icmp": 1, "icmp6": 58}  # IANA protocol numbers
NFSTREAM_COUNTS = ("src2dst_packets", "src2dst_bytes_ip", "src2dst_bytes_raw",
                   "dst2src_packets", "dst2src_bytes_ip", "dst2src_bytes_raw")
PORTLESS = (1, 58)  # ICMP, ICMPv6: NFStream reports ports 0


@dataclass(frozen=True)
class Tool:
    """One oracle: its name and whether it keys flows on the VLAN id."""

    name: str
    vlan_in_key: bool


TSHARK = Tool("tshark", vlan_in_key=False)
NFSTREAM = Tool("nfstream", vlan_in_key=True)


def _norm_addr(addrs: pd.Series) -> np.ndarray:
    """Addresses as Python's ipaddress prints them, computed once per distinct text."""
    text = addrs.astype(str)
    uniq = pd.unique(text)
    names = {u: str(ipaddress.ip_address(u)) for u in uniq}
    return text.map(names).to_numpy(dtype=object)


def canonical(proto: np.ndarray, a_addr: pd.Series, a_port: np.ndarray, b_addr: pd.Series,
              b_port: np.ndarray, vlan: np.ndarray, ab: dict[str, np.ndarray],
              ba: dict[str, np.ndarray], *, grouped: bool = True,
              first_ms: pd.Series | None = None) -> pd.DataFrame:
    """Rows of (a -> b, b -> a) counters keyed by the ordered socket pair, summed per key.

    ``ab``/``ba`` map each measure to the per-row counts sent by a / by b;
    ``grouped=False`` keeps one row per input row (its key and directed counts).
    ``first_ms`` (the rows' first-packet times) gives the pair's earliest, as ``first_ms``.
    """
    a, b = _norm_addr(a_addr), _norm_addr(b_addr)
    a_port, b_port = np.asarray(a_port, np.int64), np.asarray(b_port, np.int64)
    swap = (a > b) | ((a == b) & (a_port > b_port))
    df = pd.DataFrame({
        "proto": np.asarray(proto, np.int64),
        "lo_addr": np.where(swap, b, a), "lo_port": np.where(swap, b_port, a_port),
        "hi_addr": np.where(swap, a, b), "hi_port": np.where(swap, a_port, b_port),
        "vlan": np.asarray(vlan, np.int64),
    })
    for m in MEASURES:
        x, y = np.asarray(ab[m], np.int64), np.asarray(ba[m], np.int64)
        df[f"up_{m}"] = np.where(swap, y, x)
        df[f"down_{m}"] = np.where(swap, x, y)
    if not grouped:
        return df
    df["rows"] = 1
    sums = {c: "sum" for c in [*DIRECTED, "rows"]}
    if first_ms is not None:
        df["first_ms"] = np.asarray(first_ms, np.int64)
        sums["first_ms"] = "min"
    out = df.groupby(KEY, sort=True, as_index=False).agg(sums)
    for m in MEASURES:
        out[f"tot_{m}"] = out[f"up_{m}"] + out[f"down_{m}"]
    return out


@lru_cache(maxsize=2)
def load_flows(trace: Path, vlan_in_key: bool) -> pd.DataFrame:
    """tracker.read_flows of a corpus trace (cached: the explanation reads it again)."""
    import tracker

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # truncated or NaT files warn by design
        return tracker.read_flows(trace, vlan_in_key=vlan_in_key)


@lru_cache(maxsize=1)
def load_packets(trace: Path, vlan_in_key: bool) -> pd.DataFrame:
    """tracker.read_packets with the same options, so flow_id names read_flows rows."""
    import tracker

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tracker.read_packets(trace, vlan_in_key=vlan_in_key)


def proto_numbers(names: pd.Series) -> np.ndarray:
    """Our proto column (tcp, udp, icmp, icmp6 or the number as text) as IP protocol numbers."""
    text = names.astype(str)
    numbers = text.map(PROTO_NUMBER).fillna(pd.to_numeric(text, errors="coerce"))
    return numbers.fillna(-1).to_numpy(np.int64)


def ours(trace: Path, tool: Tool) -> pd.DataFrame:
    """read_flows summed per socket pair, keyed as ``tool`` keys its flows."""
    df = load_flows(trace, tool.vlan_in_key)
    # A connection whose every packet had its TCP header cut short counts no packet (as
    # Zeek's 0-packet rows); the packet tools have no stream of it.
    df = df[(df["orig_pkts"] + df["resp_pkts"]) > 0]
    proto = proto_numbers(df["proto"])
    portless = np.isin(proto, PORTLESS) & (tool is NFSTREAM)
    if tool is TSHARK:
        keep = np.isin(proto, (6, 17))
        df, proto, portless = df[keep], proto[keep], portless[keep]
    vlan = df["vlan"].astype("Int64").fillna(0).to_numpy(np.int64) if tool.vlan_in_key \
        else np.zeros(len(df), np.int64)
    return canonical(
        proto, df["orig_addr"], np.where(portless, 0, df["orig_port"]), df["resp_addr"],
        np.where(portless, 0, df["resp_port"]), vlan,
        {"pkts": df["orig_pkts"], "ip": df["orig_ip_bytes"], "wire": df["orig_wire_bytes"]},
        {"pkts": df["resp_pkts"], "ip": df["resp_ip_bytes"], "wire": df["resp_wire_bytes"]})


def tshark(trace: Path) -> pd.DataFrame:
    """tshark_streams.csv summed per socket pair (its a = sender of the stream's first frame)."""
    t = pd.read_csv(trace.parent / "tshark_streams.csv", dtype={"a_addr": str, "b_addr": str})
    proto = t["kind"].map(PROTO_NUMBER).to_numpy(np.int64)
    return canonical(
        proto, t["a_addr"], t["a_port"], t["b_addr"], t["b_port"], np.zeros(len(t), np.int64),
        {"pkts": t["a2b_frames"], "ip": t["a2b_ip_bytes"], "wire": t["a2b_frame_bytes"]},
        {"pkts": t["b2a_frames"], "ip": t["b2a_ip_bytes"], "wire": t["b2a_frame_bytes"]})


def nfstream(trace: Path) -> pd.DataFrame:
    """nfstream_generated.csv summed per socket pair and VLAN id."""
    t = pd.read_csv(trace.parent / "nfstream_generated.csv", dtype={"src_ip": str, "dst_ip": str})
    if t.empty:  # header-only files of 0 flows use older column names (no *_bytes_ip)
        t = t.reindex(columns=[*t.columns, *(c for c in NFSTREAM_COUNTS if c not in t)])
    return canonical(
        t["protocol"].to_numpy(np.int64), t["src_ip"], t["src_port"], t["dst_ip"],
        t["dst_port"], t["vlan_id"].to_numpy(np.int64),
        {"pkts": t["src2dst_packets"], "ip": t["src2dst_bytes_ip"],
         "wire": t["src2dst_bytes_raw"]},
        {"pkts": t["dst2src_packets"], "ip": t["dst2src_bytes_ip"],
         "wire": t["dst2src_bytes_raw"]}, first_ms=t["bidirectional_first_seen_ms"])


def merge(ours_df: pd.DataFrame, theirs: pd.DataFrame) -> pd.DataFrame:
    """Outer join per socket pair; ``side`` says where the pair is, ``diff`` what differs.

    ``diff`` lists the measures that differ ("" when all agree): the totals
    (``tot_pkts``...) and, where the direction is defined (the two sockets
    differ), the directed ones (``up_pkts``...).
    """
    cols = [*DIRECTED, *TOTALS, "rows"]
    m = ours_df.merge(theirs, on=KEY, how="outer", suffixes=("", "_t"), indicator="side")
    m["side"] = m["side"].astype(str).map({"both": "both", "left_only": "ours_only",
                                           "right_only": "theirs_only"})
    both = [*cols, *(f"{c}_t" for c in cols)]
    m[both] = m[both].fillna(0).astype(np.int64)
    directed = (m["lo_addr"] != m["hi_addr"]) | (m["lo_port"] != m["hi_port"])
    diffs = []
    for c in [*TOTALS, *DIRECTED]:
        bad = m[c] != m[f"{c}_t"]
        if c in DIRECTED:
            bad &= directed
        diffs.append(np.where(bad, c, ""))
    m["diff"] = [" ".join(x for x in row if x) for row in zip(*diffs, strict=True)]
    return m


def pair_text(row: pd.Series) -> str:
    """A socket pair as one line: '6 10.0.0.1:80 10.0.0.2:5000 vlan 0' (proto number first)."""
    return (f"{row['proto']} {row['lo_addr']}:{row['lo_port']} {row['hi_addr']}:{row['hi_port']}"
            f" vlan {row['vlan']}")
