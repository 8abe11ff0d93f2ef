"""File formats for flows and packets frames: csv, json (lines), parquet and Zeek's conn.log.

Each writer takes DataFrames chunk by chunk (``write``), as the flows finish,
and finishes the file in ``close``; memory follows one chunk, never the file.
csv, json and parquet carry exactly the frame's columns under its names;
nothing else (no footer, no progress) ever goes into them. Times are ISO
8601 UTC with nanoseconds in csv and json, durations seconds; parquet keeps
every dtype. The zeek writer is in zeek.py.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from tracker.report.export import csv_frame, write_csv

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


class FrameWriter(Protocol):
    """Writes DataFrames of one table to one binary stream."""

    def write(self, df: pd.DataFrame) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CsvLines:
    """Rows already written as CSV text (csv_text.flows_csv): the header line, the lines."""

    header: str
    lines: bytes
    rows: int

    def __len__(self) -> int:
        return self.rows


class CsvWriter:
    """CSV with one header line, the frame's column names; it takes Arrow tables of
    text-ready columns (export.flows_table) and CsvLines too, so that flows need no
    DataFrame."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        self._header = True

    def write(self, df: pd.DataFrame | pa.Table | CsvLines) -> None:
        if not (len(df) or self._header):
            return
        if isinstance(df, CsvLines):
            if self._header:
                self._out.write(df.header + "\n")
            self._out.buffer.write(df.lines)
        else:
            write_csv(df, self._out, header=self._header)
        self._header = False

    def close(self) -> None:
        self._out.flush()
        self._out.detach()


class JsonLinesWriter:
    """One JSON object per row (JSON lines); missing values are null."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def write(self, df: pd.DataFrame) -> None:
        if len(df):
            text = csv_frame(df).to_json(orient="records", lines=True, date_format="iso")
            self._out.write(text.encode("utf-8").rstrip(b"\n") + b"\n")

    def close(self) -> None:
        self._out.flush()


def arrow_table(df: pd.DataFrame) -> pa.Table:
    """``df`` as an Arrow table for Parquet, its column of tuples (tunnel_parents: flow
    ids) a list of int64 in every chunk. pyarrow types the column from its values: null
    in a chunk without rows, a list of null where every tuple is empty; the first
    chunk's schema then refused the next chunk's lists (a traceback for most captures)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(df, preserve_index=False)
    ids = pa.list_(pa.int64())
    for i, f in enumerate(table.schema):
        if pa.types.is_null(f.type) or (pa.types.is_list(f.type)
                                        and pa.types.is_null(f.type.value_type)):
            table = table.set_column(i, f.with_type(ids), table.column(i).cast(ids))
    return table


class ParquetWriter:
    """One Parquet file, a row group per chunk, every dtype kept (pandas metadata).

    Categorical columns are written as dictionaries of strings with int32
    indices, so chunks with different categories share one schema; reading
    the file back unifies them.
    """

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._writer: Any = None
        self._schema: Any = None

    def write(self, df: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = arrow_table(df)
        first = self._schema is None
        if first:
            self._schema = pa.schema(
                [f.with_type(pa.dictionary(pa.int32(), pa.string()))
                 if pa.types.is_dictionary(f.type) else f for f in table.schema],
                metadata=table.schema.metadata)
            self._writer = pq.ParquetWriter(self._out, self._schema)
        if len(df) or first:  # an empty first chunk still makes a valid file
            self._writer.write_table(table.cast(self._schema))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._out.flush()


WRITERS: dict[str, type[CsvWriter | JsonLinesWriter | ParquetWriter]] = {
    "csv": CsvWriter, "json": JsonLinesWriter, "parquet": ParquetWriter}
