"""Aligned text tables for people: the netstat view, summaries, and their footer.

Columns that do not fit the terminal's width are left out from the right, the
address and state columns last; times print as UTC to the millisecond and
durations as seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from tracker.report.summary import RunSummary

if TYPE_CHECKING:
    import pandas as pd

KEEP = 4  # Proto, Local Address, Foreign Address, State: always shown
Cells = tuple[str, list[str], bool]  # a column's name, its text per row, right-aligned


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def array_cells(values: np.ndarray) -> tuple[list[str], bool]:
    """One numpy column as text (and whether it is right-aligned, as numbers are):
    times to the millisecond (UTC), durations in s, '-' for missing."""
    if values.dtype.kind == "M":
        text = np.datetime_as_string(values.astype("datetime64[ns]"), unit="ms")
        return [t.replace("T", " ") if t != "NaT" else "-" for t in text], False
    if values.dtype.kind == "m":
        return [f"{v:.3f}" for v in values.view(np.int64) / 1e9], True
    if values.dtype.kind == "f":
        return ["-" if np.isnan(v) else f"{v:.3f}" for v in values], True
    if values.dtype.kind in "iu":
        return [str(v) for v in values.tolist()], True
    present = [v for v in values if not _missing(v)]  # objects: numbers that may be missing
    right = bool(present) and all(isinstance(v, int | np.integer) for v in present)
    return ["-" if _missing(v) else str(v) for v in values], right


def _frame_cells(col: pd.Series) -> tuple[list[str], bool]:
    """A DataFrame column's text (array_cells), right-aligned when numeric or a duration."""
    import pandas as pd

    types = pd.api.types
    right = types.is_numeric_dtype(col.dtype) or types.is_timedelta64_dtype(col.dtype)
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        values = col.dt.tz_localize(None).to_numpy()
    elif types.is_timedelta64_dtype(col.dtype):
        values = col.to_numpy()
    elif types.is_float_dtype(col.dtype):
        values = col.to_numpy(dtype=float, na_value=np.nan)
    else:
        values = col.astype(object).where(col.notna(), None).to_numpy()
    return array_cells(values)[0], right


def render(df: pd.DataFrame, width: int | None = None) -> list[str]:
    """Header and rows of ``df`` as aligned lines; numbers right-aligned, text left.

    With ``width``, the rightmost columns that do not fit are left out (never
    the first ``KEEP``).
    """
    return render_cells([(str(name), *_frame_cells(df[name])) for name in df.columns],
                        len(df), width)


def render_columns(columns: Mapping[str, np.ndarray], width: int | None = None) -> list[str]:
    """render for columns held as numpy arrays (the command's netstat table, no pandas)."""
    n = len(next(iter(columns.values()))) if columns else 0
    return render_cells([(name, *array_cells(np.asarray(v))) for name, v in columns.items()],
                        n, width)


def render_cells(cols: list[Cells], rows: int, width: int | None) -> list[str]:
    """Aligned lines of columns already made text (render, render_columns)."""
    sized = [(name, cells, max([len(name), *map(len, cells)]), right)
             for name, cells, right in cols]
    if width is not None:
        used = 0
        kept: list[tuple[str, list[str], int, bool]] = []
        for i, col in enumerate(sized):
            used += col[2] + (2 if kept else 0)
            if i >= KEEP and used > width:
                break
            kept.append(col)
        sized = kept

    def line(values: list[str]) -> str:
        parts = [v.rjust(size) if right else v.ljust(size)
                 for v, (_, _, size, right) in zip(values, sized, strict=True)]
        return "  ".join(parts).rstrip()

    lines = [line([name for name, _, _, _ in sized])]
    lines += [line([c[1][i] for c in sized]) for i in range(rows)]
    return lines


def footer(flows: Mapping[str, Any], summary: RunSummary) -> str:
    """Flows, packets, IP bytes, the time span, and the frames that were not OK.

    ``flows``: a flows frame, or its columns orig_pkts, resp_pkts, orig_ip_bytes,
    resp_ip_bytes as numbers and first_ts, last_ts as datetime64 (UTC)."""
    n = len(flows["orig_pkts"])
    packets = int(np.sum(flows["orig_pkts"]) + np.sum(flows["resp_pkts"])) if n else 0
    nbytes = int(np.sum(flows["orig_ip_bytes"]) + np.sum(flows["resp_ip_bytes"])) if n else 0
    text = f"{n} flows, {packets} packets, {nbytes} IP bytes"
    if n:
        first = _utc_ns(flows["first_ts"]).min()
        last = _utc_ns(flows["last_ts"]).max()
        span = (last - first) / np.timedelta64(1, "s")
        text += (f", {_seconds_text(first)} to {_seconds_text(last)} UTC ({span:.3f} s)")
    odd = [f"{n} {name.lower()}" for name, n in summary.status.items() if n and name != "OK"]
    return text + (f"; frames: {', '.join(odd)}" if odd else "")


def _utc_ns(times: Any) -> np.ndarray:
    """datetime64[ns] (UTC) of a tz-aware Series or of a numpy datetime64 array."""
    if hasattr(times, "dt"):
        return times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    return np.asarray(times).astype("datetime64[ns]")


def _seconds_text(t: np.datetime64) -> str:
    return str(np.datetime_as_string(t, unit="s")).replace("T", " ")
