"""The packets as text for ``tracker packets``: one line per frame, like ``tcpdump -n -S``.

    frame  time (UTC)                     proto  source > destination  details
        1  2023-11-14 22:13:20.000000000  tcp    192.0.2.10:49152 > 198.51.100.20:80 Flags [S], seq 1000, win 64240, length 0  flow 0

Sockets print as ``ip:port`` and ``[v6]:port`` (addresses by the standard
rules, ``2001:db8::``); protocols as the flows name them; TCP as tcpdump
does (flag letters, absolute seq and ack, window, payload length). A frame
that is not a normal packet says its status.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tracker.report.columns import PROTO_NAMES
from tracker.report.export import csv_frame

HEADER = f"{'frame':>7}  {'time (UTC)':<29}  {'proto':<5}  packet"
# tcpdump's letters (print-tcp.c tcp_flag_values), in its order; '.' is ACK.
_TCPDUMP_FLAGS = ((0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x10, "."),
                  (0x20, "U"), (0x40, "E"), (0x80, "W"))


def tcpdump_flags(value: int) -> str:
    text = "".join(ch for bit, ch in _TCPDUMP_FLAGS if value & bit)
    return text or "none"


def _by_unique(col: pd.Series, fn) -> pd.Series:  # type: ignore[no-untyped-def]
    """``fn`` applied once per distinct value (few flag values, few protocols)."""
    uniq = col.dropna().unique()
    return col.astype(object).map({v: fn(v) for v in uniq})


def _sockets(addr: pd.Series, port: pd.Series) -> pd.Series:
    text = addr.astype(object).fillna("-").astype(str)
    v6 = text.str.contains(":", regex=False)
    with_port = port.notna().to_numpy()
    bracketed = text.where(~(v6 & with_port), "[" + text + "]")
    return bracketed.where(~with_port, bracketed + ":" + port.astype("string").fillna(""))


def _tcp_details(df: pd.DataFrame) -> pd.Series:
    flags = _by_unique(df["tcp_flags"], lambda v: tcpdump_flags(int(v)))
    ack = df["tcp_flags"].fillna(0).astype(int) & 0x10
    text = "Flags [" + flags.fillna("") + "], seq " + df["seq"].astype("string").fillna("")
    text = text.where(ack == 0, text + ", ack " + df["ack"].astype("string").fillna(""))
    return text + ", win " + df["window"].astype("string").fillna("") + ", length " + \
        df["payload_len"].astype("string").fillna("-")


def table_lines(df: pd.DataFrame) -> list[str]:
    """The rows of a packets frame as text lines (without the header)."""
    ts = csv_frame(df[["ts"]])["ts"].str.replace("T", " ").str.rstrip("Z").replace("", "NaT")
    proto = _by_unique(df["proto"], lambda v: PROTO_NAMES.get(int(v), str(int(v)))).fillna("-")
    path = _sockets(df["src_addr"], df["src_port"]) + " > " + \
        _sockets(df["dst_addr"], df["dst_port"])
    details = pd.Series("length " + df["payload_len"].astype("string").fillna("-"),
                        index=df.index)
    is_tcp = df["tcp_flags"].notna().to_numpy()
    if is_tcp.any():
        details = details.where(~is_tcp, _tcp_details(df))
    icmp = df["icmp_type"].notna().to_numpy()
    details = details.where(~icmp, "type " + df["icmp_type"].astype("string").fillna("") +
                            " code " + df["icmp_code"].astype("string").fillna(""))
    not_ip = df["src_addr"].isna().to_numpy()
    path = path.where(~not_ip, "")
    details = details.where(~not_ip, "")
    status = df["status"].astype(str)
    note = np.where(status == "OK", "", "  " + status)
    flow = np.where(df["flow_id"].isna(), "", "  flow " + df["flow_id"].astype("string"))
    rows = zip(df["frame"].astype(str), ts, proto, path, details, note, flow, strict=True)
    return [f"{f:>7}  {t:<29}  {p:<5}  {a} {d}{n}{fl}".rstrip()
            for f, t, p, a, d, n, fl in rows]
