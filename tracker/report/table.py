"""Aligned text tables for people: the netstat view, summaries, and their footer.

Columns that do not fit the terminal's width are left out from the right, the
address and state columns last; times print as UTC to the millisecond and
durations as seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tracker.report.summary import RunSummary

KEEP = 4  # Proto, Local Address, Foreign Address, State: always shown


def _cells(col: pd.Series) -> list[str]:
    """One column as text: '-' for missing, times to the millisecond, durations in s."""
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        ns = col.dt.tz_localize(None).to_numpy()
        text = np.datetime_as_string(ns, unit="ms")
        return [t.replace("T", " ") if t != "NaT" else "-" for t in text]
    if pd.api.types.is_timedelta64_dtype(col.dtype):
        return [f"{v:.3f}" for v in col.to_numpy().view(np.int64) / 1e9]
    if pd.api.types.is_float_dtype(col.dtype):
        return ["-" if pd.isna(v) else f"{v:.3f}" for v in col]
    return ["-" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
            else str(v) for v in col.astype(object)]


def render(df: pd.DataFrame, width: int | None = None) -> list[str]:
    """Header and rows of ``df`` as aligned lines; numbers right-aligned, text left.

    With ``width``, the rightmost columns that do not fit are left out (never
    the first ``KEEP``).
    """
    cols: list[tuple[str, list[str], int, bool]] = []
    for name in df.columns:
        cells = _cells(df[name])
        size = max([len(name), *map(len, cells)])
        right = pd.api.types.is_numeric_dtype(df[name].dtype) or \
            pd.api.types.is_timedelta64_dtype(df[name].dtype)
        cols.append((name, cells, size, right))
    if width is not None:
        used = 0
        kept: list[tuple[str, list[str], int, bool]] = []
        for i, col in enumerate(cols):
            used += col[2] + (2 if kept else 0)
            if i >= KEEP and used > width:
                break
            kept.append(col)
        cols = kept

    def line(values: list[str]) -> str:
        parts = [v.rjust(size) if right else v.ljust(size)
                 for v, (_, _, size, right) in zip(values, cols, strict=True)]
        return "  ".join(parts).rstrip()

    lines = [line([name for name, _, _, _ in cols])]
    lines += [line([c[1][i] for c in cols]) for i in range(len(df))]
    return lines


def footer(flows: pd.DataFrame, summary: RunSummary) -> str:
    """Flows, packets, IP bytes, the time span, and the frames that were not OK."""
    packets = int(flows["orig_pkts"].sum() + flows["resp_pkts"].sum()) if len(flows) else 0
    nbytes = int(flows["orig_ip_bytes"].sum() + flows["resp_ip_bytes"].sum()) if len(flows) \
        else 0
    text = f"{len(flows)} flows, {packets} packets, {nbytes} IP bytes"
    if len(flows):
        first, last = flows["first_ts"].min(), flows["last_ts"].max()
        span = (last - first).total_seconds()
        text += (f", {first.strftime('%Y-%m-%d %H:%M:%S')} to "
                 f"{last.strftime('%Y-%m-%d %H:%M:%S')} UTC ({span:.3f} s)")
    odd = [f"{n} {name.lower()}" for name, n in summary.status.items() if n and name != "OK"]
    return text + (f"; frames: {', '.join(odd)}" if odd else "")
