"""Printing decoded packets for ``tracker packets``, batch by batch.

The printer takes what a pipeline run yields: an iterable of decoded
``PacketBatch``es, each with the flow id of every row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

import numpy as np
import pandas as pd

from tracker.packets import PacketBatch
from tracker.report.columns import PROTO_NAMES
from tracker.report.export import csv_frame, write_csv
from tracker.report.packets import packets_dataframe

_FLAG_LETTERS = "FSRPAUECN"  # bit 0 FIN ... bit 8 NS (RFC 9293 section 3.1, RFC 3540)


def _flags_text(flags: pd.Series) -> pd.Series:
    """tcpdump-like flag letters per TCP row ('S', 'SA', 'FA', ...)."""
    def letters(v: object) -> str:
        if v is pd.NA:
            return ""
        return "".join(ch for bit, ch in enumerate(_FLAG_LETTERS) if int(v) >> bit & 1)  # type: ignore[call-overload]
    # Few distinct flag values exist, so map over the unique ones only.
    uniq = flags.dropna().unique()
    table = {v: letters(v) for v in uniq}
    return flags.astype(object).map(table).fillna("")


def _proto_names(proto: pd.Series) -> pd.Series:
    """Protocol names as the flows print them (tcp, udp, icmp, icmp6, else the number)."""
    uniq = proto.dropna().unique()
    names = {v: PROTO_NAMES.get(int(v), str(int(v))) for v in uniq}
    return proto.astype(object).map(names).fillna("-")


def _table_lines(df: pd.DataFrame) -> list[str]:
    src = df["src_addr"].astype(object).fillna("-").astype(str)
    dst = df["dst_addr"].astype(object).fillna("-").astype(str)
    sport = df["src_port"].astype("string").fillna("")
    dport = df["dst_port"].astype("string").fillna("")
    src = (src + ":" + sport).str.rstrip(":")
    dst = (dst + ":" + dport).str.rstrip(":")
    ts = csv_frame(df[["ts"]])["ts"].str.replace("T", " ").str.rstrip("Z").replace("", "NaT")
    proto = _proto_names(df["proto"])
    flags = _flags_text(df["tcp_flags"])
    length = df["ip_len"].astype("string").fillna("-")
    frame = df["frame"].astype(str)
    status = df["status"].astype(str)
    flow = df["flow_id"].astype("string").fillna("-")
    rows = zip(frame, ts, src, dst, proto, flags, length, flow, status)
    return [f"{f:>7} {t} {s:>21} > {d:<21} {p:>5} {fl:<4} {ln:>5} {fid:>6} {st}"
            for f, t, s, d, p, fl, ln, fid, st in rows]


def print_packets(batches: Iterable[tuple[PacketBatch, np.ndarray]], out: TextIO, *,
                  fmt: str = "table", count: int | None = None) -> None:
    """Write one row per frame to ``out`` as each batch comes: ``(packets, flow_ids)``."""
    written = 0
    header = True
    for packets, flow_ids in batches:
        if not len(packets):
            continue
        if header and fmt == "table":
            out.write(f"{'frame':>7} {'time (UTC)':<29} {'source':>21}   {'destination':<21} "
                      f"{'proto':>5} {'tcp':<4} {'iplen':>5} {'flow':>6} status\n")
        df = packets_dataframe(packets, flow_ids)
        if count is not None:
            df = df.iloc[: count - written]
        if fmt == "csv":
            write_csv(csv_frame(df), out, header=header)
        else:
            out.write("\n".join(_table_lines(df)) + ("\n" if len(df) else ""))
        header = False
        written += len(df)
        if count is not None and written >= count:
            break
