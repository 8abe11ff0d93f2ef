"""Writing DataFrames out: CSV for the command line.

Times are ISO 8601 UTC with nanoseconds (``2023-11-14T22:13:20.000000001Z``)
and durations are seconds, as in Zeek's conn.log; both are formatted with
numpy at once, because pandas formats such columns cell by cell.
"""

from __future__ import annotations

import io
from typing import TextIO

import numpy as np
import pandas as pd


def csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its datetime columns as ISO text, timedelta columns as seconds and
    tunnel_parents as its ids joined by ','."""
    out = df.copy(deep=False)
    out.attrs = {}
    for col in df.columns:
        kind = df[col].dtype
        if isinstance(kind, pd.DatetimeTZDtype):
            ns = df[col].dt.tz_localize(None).to_numpy()
            text = np.char.add(np.datetime_as_string(ns, unit="ns"), "Z")
            out[col] = np.where(np.isnat(ns), "", text)
        elif pd.api.types.is_timedelta64_dtype(kind):
            out[col] = df[col].to_numpy().view(np.int64) / 1e9
        elif col == "tunnel_parents":  # tuples of ids: "3,7", empty when none
            out[col] = [",".join(map(str, ids)) for ids in df[col]]
    return out


def write_csv(df: pd.DataFrame, out: TextIO, *, header: bool) -> None:
    """CSV through pyarrow's writer (C++, about 5x pandas' per-row Python writer).

    Values are never quoted: addresses, names and states hold no comma or quote.
    A value that would need quotes makes pyarrow refuse, and pandas writes it.
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    # The system allocator: arrow's default pool (jemalloc/mimalloc) keeps freed pages,
    # which added tens of MB to the peak RSS of a long run. (Process-wide, but only
    # the CLI writes CSV through arrow.)
    pool = pa.system_memory_pool()
    pa.set_memory_pool(pool)
    table = pa.Table.from_pandas(df, preserve_index=False)
    sink = io.BytesIO()
    try:  # the header is ours: pyarrow quotes header names whatever the quoting style
        pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False,
                                                          quoting_style="none"),
                         memory_pool=pool)
    except pa.ArrowInvalid:
        df.to_csv(out, index=False, header=header)
        return
    if header:
        out.write(",".join(df.columns) + "\n")
    raw = getattr(out, "buffer", None)
    if raw is None:
        out.write(sink.getvalue().decode("utf-8"))
    else:  # a real file: hand over the bytes, without a decoded copy
        out.flush()
        raw.write(sink.getbuffer())


