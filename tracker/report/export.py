"""Tables as CSV text: flows straight from their records, any DataFrame through Arrow.

Times are ISO 8601 UTC with nanoseconds (``2023-11-14T22:13:20.000000001Z``)
and durations are seconds, as in Zeek's conn.log; both are formatted with
numpy at once, because pandas formats such columns cell by cell. The flows
of ``tracker read --format csv`` are written by a compiled loop (csv_text.py);
where it leaves them to Arrow they become an Arrow table without a DataFrame
(``flows_table``): pandas is never imported on that path (0.3-0.45 s), and
no frame is built only to be converted again.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from tracker.flows.records import FlowRecords
from tracker.report.columns import DURATION, FLOW_COLUMNS, TIME, Column
from tracker.report.flow_columns import Coded, Masked, flow_columns

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def iso_text(ns: np.ndarray) -> np.ndarray:
    """datetime64[ns] as ISO 8601 UTC text with nanoseconds; NaT as ''."""
    text = np.char.add(np.datetime_as_string(ns, unit="ns"), "Z")
    return np.where(np.isnat(ns), "", text)


def ids_text(ids: Iterable[tuple[int, ...]]) -> list[str]:
    """Tuples of flow ids as ``"3,7"``; '' for none."""
    return [",".join(map(str, t)) for t in ids]


def csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its datetime columns as ISO text, timedelta columns as seconds and
    tunnel_parents as its ids joined by ','."""
    import pandas as pd

    out = df.copy(deep=False)
    out.attrs = {}
    for col in df.columns:
        kind = df[col].dtype
        if isinstance(kind, pd.DatetimeTZDtype):
            out[col] = iso_text(df[col].dt.tz_localize(None).to_numpy())
        elif pd.api.types.is_timedelta64_dtype(kind):
            out[col] = df[col].to_numpy().view(np.int64) / 1e9
        elif col == "tunnel_parents":
            out[col] = ids_text(df[col])
    return out


# The Arrow arrays of flows_table are made over numpy's memory (from_buffers):
# pa.array() first asks pyarrow's pandas shim whether the values are pandas
# objects, and that imports pandas (0.3-0.45 s) on the one path that needs none.

def _numbers(values: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """An Arrow array of numpy numbers (int32, int64, float64); ``missing`` rows null."""
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    valid = None if missing is None else \
        pa.py_buffer(np.packbits(~missing, bitorder="little"))
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values),
                                 [valid, pa.py_buffer(values)], null_count=-1)


def _string_array(sizes: np.ndarray, data: bytes) -> pa.Array:
    """An Arrow string array of ``len(sizes)`` values, laid end to end in ``data``."""
    import pyarrow as pa

    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    return pa.Array.from_buffers(pa.string(), len(sizes),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _packed(grid: np.ndarray, sizes: np.ndarray) -> bytes:
    """The first ``sizes[i]`` bytes of each row of a (n, width) uint8 grid, end to end."""
    return grid[np.arange(grid.shape[1]) < sizes[:, None]].tobytes()


def _strings(texts: np.ndarray | list[str]) -> pa.Array:
    """An Arrow string array of a list of text, or of a numpy array of ASCII text."""
    if isinstance(texts, list):
        try:  # names are ASCII but for rare service names: numpy encodes them at once
            return _strings(np.array(texts, dtype=str))
        except UnicodeEncodeError:
            encoded = [t.encode("utf-8") for t in texts]
            return _string_array(np.array([len(b) for b in encoded], np.int64),
                                 b"".join(encoded))
    fixed = np.ascontiguousarray(texts.astype("S"))  # never narrower than S1
    grid = fixed.view(np.uint8).reshape(len(fixed), fixed.dtype.itemsize)
    sizes = np.strings.str_len(fixed).astype(np.int64)
    return _string_array(sizes, _packed(grid, sizes))


_DIGIT_SCALE = 10 ** np.arange(8, -1, -1, dtype=np.int64)  # 9 fraction digits, first to last


def _iso_strings(ns: np.ndarray) -> pa.Array:
    """iso_text's strings as an Arrow array, made as bytes: each distinct second is
    formatted once (a chunk's flows share few), the nanoseconds digit by digit. Every
    int64 nanosecond time is in the years 1677-2262: 19 characters to the second."""
    nat = np.isnat(ns)
    raw = np.where(nat, 0, ns.view(np.int64))
    sec = np.floor_divide(raw, 1_000_000_000)  # floor: 1969-12-31T23:59:59.999999999
    uniq, inv = np.unique(sec, return_inverse=True)
    text = np.datetime_as_string(uniq.astype("datetime64[s]"), unit="s").astype("S19")
    grid = np.empty((len(ns), 30), np.uint8)
    grid[:, :19] = text.view(np.uint8).reshape(len(uniq), 19)[inv.reshape(-1)]
    grid[:, 19] = ord(".")
    frac = raw - sec * 1_000_000_000
    grid[:, 20:29] = (frac[:, None] // _DIGIT_SCALE) % 10 + ord("0")
    grid[:, 29] = ord("Z")
    sizes = np.where(nat, 0, 30)
    return _string_array(sizes, grid.tobytes() if not nat.any() else _packed(grid, sizes))


def tunnelled_rows(ids: np.ndarray) -> np.ndarray:
    """The rows of a tunnel_parents column (tuples of ids) that hold any id: only those
    need text, the others are ''."""
    return np.flatnonzero(np.asarray(np.frompyfunc(len, 1, 1)(ids), dtype=bool))


def _ids_strings(ids: np.ndarray) -> pa.Array:
    """tunnel_parents as ids_text's strings; only tunnelled rows are joined one by one."""
    sizes = np.zeros(len(ids), np.int64)
    tunnelled = tunnelled_rows(ids)
    texts = [t.encode() for t in ids_text(ids[tunnelled])]
    sizes[tunnelled] = [len(t) for t in texts]
    return _string_array(sizes, b"".join(texts))


def _arrow(column: Column, values: Any) -> pa.Array:
    """One column of flow_columns as csv_frame would give it, in Arrow."""
    import pyarrow as pa

    if isinstance(values, Coded):
        codes = _numbers(values.codes, values.codes < 0)  # int32
        return pa.DictionaryArray.from_arrays(codes, _strings(values.names))
    if isinstance(values, Masked):
        return _numbers(values.values, values.missing)
    if column.dtype == TIME:
        return _iso_strings(values.view("datetime64[ns]"))
    if column.dtype == DURATION:
        return _numbers(values / 1e9)
    if column.dtype == "object":  # tunnel_parents: tuples of flow ids
        return _ids_strings(values)
    return _numbers(values)


def flows_table(records: FlowRecords) -> pa.Table:
    """The flows of ``records`` with the columns of ``FLOW_COLUMNS`` as the CSV writes
    them: the rows of ``csv_frame(flows_dataframe(records))``, without pandas."""
    import pyarrow as pa

    cols = flow_columns(records)
    return pa.Table.from_arrays([_arrow(c, cols[c.name]) for c in FLOW_COLUMNS],
                                names=[c.name for c in FLOW_COLUMNS])


def write_csv(rows: pd.DataFrame | pa.Table, out: TextIO, *, header: bool) -> None:
    """CSV of an Arrow table (or a DataFrame, through csv_frame) with Arrow's writer
    (C++, about 5x pandas' per-row Python writer).

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
    table = rows if isinstance(rows, pa.Table) else \
        pa.Table.from_pandas(csv_frame(rows), preserve_index=False)
    sink = io.BytesIO()
    try:  # the header is ours: pyarrow quotes header names whatever the quoting style
        pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False,
                                                          quoting_style="none"),
                         memory_pool=pool)
    except pa.ArrowInvalid:
        frame = rows.to_pandas() if isinstance(rows, pa.Table) else csv_frame(rows)
        frame.to_csv(out, index=False, header=header)
        return
    if header:
        out.write(",".join(table.column_names) + "\n")
    raw = getattr(out, "buffer", None)
    if raw is None:
        out.write(sink.getvalue().decode("utf-8"))
    else:  # a real file: hand over the bytes, without a decoded copy
        out.flush()
        raw.write(sink.getbuffer())
