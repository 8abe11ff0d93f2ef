"""Flows as Zeek's conn.log (the ASCII writer's TSV), readable by Zeek's own tooling.

The header is Zeek's, line for line (``#separator \\x09``, ``#set_separator``,
``#empty_field``, ``#unset_field``, ``#path conn``, ``#open``, ``#fields``,
``#types``), and ``#close`` ends the file. Zeek's fields come first, with
Zeek's names, types and spellings: ``C``-prefixed uids, ``-`` for unset,
``T``/``F``, times as ``%.6f``, and Zeek's proto names (ICMPv6 is ``icmp``,
other protocols ``unknown_transport``). What the tracker does not measure is
unset (``-``): ``local_orig``/``local_resp`` without ``--local`` networks;
``tunnel_parents`` is the parents' uids, ``-`` for an untunnelled flow. Then the
columns Zeek lacks, in ``EXTRA``, each named and typed as in the flows table.
"""

from __future__ import annotations

import time
from typing import BinaryIO

import numpy as np
import pandas as pd

ZEEK_FIELDS = (
    ("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"),
    ("id.resp_h", "addr"), ("id.resp_p", "port"), ("proto", "enum"), ("service", "string"),
    ("duration", "interval"), ("orig_bytes", "count"), ("resp_bytes", "count"),
    ("conn_state", "string"), ("local_orig", "bool"), ("local_resp", "bool"),
    ("missed_bytes", "count"), ("history", "string"), ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"), ("resp_pkts", "count"), ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"), ("ip_proto", "count"),
)
# The flows table's columns that conn.log lacks, after Zeek's (Zeek types).
EXTRA = (
    ("flow_id", "count"), ("last_ts", "time"), ("vlan", "int"), ("port_class", "string"),
    ("orig_reason", "string"), ("state", "string"), ("orig_state", "string"),
    ("resp_state", "string"), ("end_reason", "string"), ("orig_wire_bytes", "count"),
    ("resp_wire_bytes", "count"), ("orig_payload_bytes", "count"),
    ("resp_payload_bytes", "count"),
)
UNSET, EMPTY = "-", "(empty)"
_ZEEK_PROTO = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmp6": "icmp"}
_NUMBER = {"tcp": 6, "udp": 17, "icmp": 1, "icmp6": 58}
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def uid(flow_id: int) -> str:
    """A conn.log uid for a flow id: ``C`` and 17 base-62 digits, unique per flow id."""
    n = (flow_id * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % (1 << 100)
    digits = []
    for _ in range(17):
        n, d = divmod(n, 62)
        digits.append(_B62[d])
    return "C" + "".join(digits)


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d-%H-%M-%S", time.localtime(t))


def _text(col: pd.Series) -> np.ndarray:
    """Values as text, unset for missing, ``(empty)`` for an empty string."""
    values = col.astype(object)
    out = values.where(values.notna(), UNSET).astype(str)
    return np.where(out == "", EMPTY, out).astype(object)


def _seconds(ns: np.ndarray) -> np.ndarray:
    return np.char.mod("%.6f", ns.astype(np.float64) / 1e9).astype(object)


def _local(addr: pd.Series, nets: list | None) -> np.ndarray:
    if not nets:
        return np.full(len(addr), UNSET, dtype=object)
    from tracker.report.netstat import inside

    return np.where(inside(addr, nets), "T", "F").astype(object)


def conn_rows(df: pd.DataFrame, nets: list | None = None) -> pd.DataFrame:
    """The conn.log fields of each flow, as text."""
    first = df["first_ts"].dt.tz_localize(None).to_numpy().view(np.int64)
    last = df["last_ts"].dt.tz_localize(None).to_numpy().view(np.int64)
    dur = df["duration"].to_numpy().view(np.int64)
    proto = df["proto"].astype(str)
    out = {
        "ts": _seconds(first),
        "uid": np.array([uid(int(i)) for i in df["flow_id"]], dtype=object),
        "id.orig_h": _text(df["orig_addr"]), "id.orig_p": _text(df["orig_port"]),
        "id.resp_h": _text(df["resp_addr"]), "id.resp_p": _text(df["resp_port"]),
        "proto": proto.map(lambda p: _ZEEK_PROTO.get(p, "unknown_transport")).to_numpy(),
        "service": _text(df["service"]),
        "duration": np.where(dur > 0, _seconds(dur), UNSET),
        "orig_bytes": _text(df["orig_bytes"]), "resp_bytes": _text(df["resp_bytes"]),
        "conn_state": _text(df["conn_state"]),
        "local_orig": _local(df["orig_addr"], nets), "local_resp": _local(df["resp_addr"], nets),
        "missed_bytes": _text(df["missed_bytes"]),
        "history": _text(df["history"]),
        "orig_pkts": _text(df["orig_pkts"]), "orig_ip_bytes": _text(df["orig_ip_bytes"]),
        "resp_pkts": _text(df["resp_pkts"]), "resp_ip_bytes": _text(df["resp_ip_bytes"]),
        "tunnel_parents": np.array([",".join(uid(int(i)) for i in ids) or UNSET
                                    for ids in df["tunnel_parents"]], dtype=object),
        "ip_proto": proto.map(lambda p: str(_NUMBER.get(p, p))).to_numpy(),
        "flow_id": _text(df["flow_id"]), "last_ts": _seconds(last),
    }
    for name, _ in EXTRA[2:]:
        out[name] = _text(df[name])
    return pd.DataFrame(out)


class ZeekConnWriter:
    """conn.log in Zeek's ASCII format; ``nets`` (the --local networks) set local_orig/resp."""

    def __init__(self, out: BinaryIO, nets: list | None = None) -> None:
        self._out = out
        self._nets = nets
        fields = (*ZEEK_FIELDS, *EXTRA)
        head = ["#separator \\x09", "#set_separator\t,", f"#empty_field\t{EMPTY}",
                f"#unset_field\t{UNSET}", "#path\tconn", f"#open\t{_stamp(time.time())}",
                "#fields\t" + "\t".join(n for n, _ in fields),
                "#types\t" + "\t".join(t for _, t in fields)]
        self._out.write(("\n".join(head) + "\n").encode("utf-8"))

    def write(self, df: pd.DataFrame) -> None:
        if len(df):
            rows = conn_rows(df, self._nets)
            text = rows.to_csv(sep="\t", header=False, index=False, lineterminator="\n")
            self._out.write(text.encode("utf-8"))

    def close(self) -> None:
        self._out.write(f"#close\t{_stamp(time.time())}\n".encode())
        self._out.flush()
