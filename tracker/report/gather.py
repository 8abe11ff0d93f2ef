"""Writing flows for ``tracker read`` as they finish, in chunks of flows.

The writer takes what a pipeline run yields: an iterable of finished
``FlowRecords``, one per batch, possibly empty.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TextIO

import pandas as pd

from tracker.flows import FlowRecords
from tracker.report.export import csv_frame, write_csv
from tracker.report.flows import flows_dataframe

# The table view: the columns a person reads first; csv has every column.
_HEADER = (f"{'id':>6} {'proto':<5} {'originator':<23} {'responder':<23} {'conn':<6} "
           f"{'history':<10} {'state':<11} {'pkts o/r':>11} {'ip bytes o/r':>17} end")


def _endpoint(addr: pd.Series, port: pd.Series) -> pd.Series:
    text = addr.astype(object).astype(str)
    v6 = text.str.contains(":", regex=False)
    text = text.where(~v6, "[" + text + "]")
    return text + ":" + port.astype(str)


def _table_lines(df: pd.DataFrame) -> list[str]:
    orig = _endpoint(df["orig_addr"], df["orig_port"])
    resp = _endpoint(df["resp_addr"], df["resp_port"])
    pkts = df["orig_pkts"].astype(str) + "/" + df["resp_pkts"].astype(str)
    ipb = df["orig_ip_bytes"].astype(str) + "/" + df["resp_ip_bytes"].astype(str)
    state = df["state"].astype(object).fillna("-")
    rows = zip(df["flow_id"], df["proto"].astype(str), orig, resp, df["conn_state"].astype(str),
               df["history"].astype(object).fillna("-"), state, pkts, ipb,
               df["end_reason"].astype(str))
    return [f"{i:>6} {p:<5} {o:<23} {r:<23} {c:<6} {h:<10} {s:<11} {n:>11} {b:>17} {e}"
            for i, p, o, r, c, h, s, n, b, e in rows]


def _gathered(finished: Iterable[FlowRecords], *, rows: int, seconds: float
              ) -> Iterator[FlowRecords]:
    """The finished flows, gathered until ``rows`` flows or ``seconds`` of wall
    time: one DataFrame per chunk instead of per batch (pandas costs ~5 ms a frame)."""
    parts: list[FlowRecords] = []
    pending, last = 0, time.monotonic()
    first = True
    for ended in finished:
        parts.append(ended)
        pending += len(ended)
        if first or pending >= rows or time.monotonic() - last >= seconds:
            yield FlowRecords.concat(parts)
            parts, pending, last, first = [], 0, time.monotonic(), False
    if parts:
        yield FlowRecords.concat(parts)


def _chunks(finished: Iterable[FlowRecords], *, rows: int, seconds: float
            ) -> Iterator[FlowRecords]:
    """Chunks of at most ``rows`` flows: a batch that ends many flows at once (a SYN
    flood under the open-flow cap ends one per packet) must not make one DataFrame
    and CSV text of them all, which costs about 2 KB a flow."""
    for records in _gathered(finished, rows=rows, seconds=seconds):
        if len(records) <= rows:
            yield records
            continue
        for start in range(0, len(records), rows):
            yield records.take(slice(start, start + rows))


def write_flows(finished: Iterable[FlowRecords], out: TextIO, *, fmt: str = "table",
                rows: int = 10_000, seconds: float = 1.0) -> None:
    """Write flows to ``out`` as they finish: every ``rows`` flows or ``seconds``."""
    header = True
    for records in _chunks(finished, rows=rows, seconds=seconds):
        if header and fmt == "table":  # after the first batch: a bad file prints no header
            out.write(_HEADER + "\n")
        if not len(records) and not header:
            continue
        df = flows_dataframe(records)
        if fmt == "csv":
            write_csv(csv_frame(df), out, header=header)
        elif len(df):
            out.write("\n".join(_table_lines(df)) + "\n")
        header = False
        out.flush()
