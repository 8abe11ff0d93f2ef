"""The flows table's CSV text written by one compiled loop, straight from flow_columns.

``tracker read --format csv`` spent a fifth of its time formatting: the Arrow
writer (export.py) builds a table per chunk and casts every column to text (0.5 s
for the 121,777 flows of gen_pcap's 5M capture). This loop writes each row's bytes
once (0.07 s for them, 0.6 us a flow; the command 2.70 -> 2.42 s, peak RSS -24 MB).
The text is export.flows_table's, byte for byte (tests/report/test_csv_text.py):

- integers in decimal; a missing one (Masked) empty;
- coded text as its name, a missing code (-1) empty;
- times ISO 8601 UTC with nanoseconds, NaT empty;
- durations as Arrow prints the seconds ``ns / 1e9``: the shortest text that reads
  back as that double, decimal from 1e-6 s on (``0.000001``, ``2``, ``0.5``) and
  ``1.5e-7`` below. The decimal expansion of ``ns / 1e9`` with its trailing zeros cut
  is that shortest text whenever it has at most 15 significant digits (any such
  decimal reads back as itself: DBL_DIG). A chunk with a longer one (an odd
  nanosecond on a flow of more than 11.6 days) is left to the Arrow writer.

``csv_rows`` returns None for what it leaves to the Arrow writer: such durations, a
name that would need quoting (tunnel_parents with several ids, "3,7"), and plain
Python runs (``jit.interpreted``: a byte loop without numba is slow; small inputs only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tracker import jit
from tracker.flows.records import FlowRecords
from tracker.report.columns import DURATION, FLOW_COLUMNS, TIME
from tracker.report.export import flows_table, ids_text, tunnelled_rows
from tracker.report.flow_columns import Coded, Masked, Values, flow_columns
from tracker.report.writers import CsvLines

if TYPE_CHECKING:
    import pyarrow as pa

# How each column is written (the kernel's codes).
INTEGER, CODED, ISO_TIME, SECONDS = 0, 1, 2, 3
NONE = np.iinfo(np.int64).min  # a missing integer, NaT
_WIDTH = {INTEGER: 20, ISO_TIME: 30, SECONDS: 21}  # at most, in bytes
_SPECIAL = (b",", b'"', b"\n", b"\r")  # a name with one of these needs quotes


@jit.kernel_inline
def _digits(v: int) -> int:
    """Decimal digits of v >= 0."""
    k = 1
    while v >= 10:
        v //= 10
        k += 1
    return k


@jit.kernel_inline
def _put_int(out: np.ndarray, pos: int, v: int, width: int) -> int:
    """v >= 0 in decimal, zero-padded to ``width`` digits (0: as many as it has)."""
    k = max(_digits(v), width)
    for i in range(pos + k - 1, pos - 1, -1):
        out[i] = 48 + v % 10
        v //= 10
    return pos + k


@jit.kernel_inline
def _put_signed(out: np.ndarray, pos: int, v: int) -> int:
    if v < 0:
        out[pos] = 45  # '-'
        return _put_int(out, pos + 1, -v, 0)
    return _put_int(out, pos, v, 0)


@jit.kernel_inline
def _put_time(out: np.ndarray, pos: int, ns: int) -> int:
    """YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ (days to a civil date: H. Hinnant's algorithm,
    exact for every int64 nanosecond time, 1677 to 2262)."""
    sec = ns // 1_000_000_000
    frac = ns - sec * 1_000_000_000
    days = sec // 86400
    rest = sec - days * 86400
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    pos = _put_int(out, pos, year, 4)
    out[pos] = 45
    pos = _put_int(out, pos + 1, month, 2)
    out[pos] = 45
    pos = _put_int(out, pos + 1, day, 2)
    out[pos] = 84  # 'T'
    pos = _put_int(out, pos + 1, rest // 3600, 2)
    out[pos] = 58  # ':'
    pos = _put_int(out, pos + 1, rest // 60 % 60, 2)
    out[pos] = 58
    pos = _put_int(out, pos + 1, rest % 60, 2)
    out[pos] = 46  # '.'
    pos = _put_int(out, pos + 1, frac, 9)
    out[pos] = 90  # 'Z'
    return pos + 1


@jit.kernel_inline
def _put_seconds(out: np.ndarray, pos: int, ns: int) -> int:
    """ns / 1e9 as Arrow prints the double (module docstring); -1: more than 15
    significant digits, not written."""
    if ns < 0:
        out[pos] = 45
        pos += 1
        ns = -ns
    if ns == 0:
        out[pos] = 48
        return pos + 1
    if ns < 1000:  # below 1e-6 s: d[.dd]e-N
        cut = 0
        while ns % 10 == 0:
            ns //= 10
            cut += 1
        k = _digits(ns)
        out[pos] = 48 + ns // 10 ** (k - 1)
        pos += 1
        if k > 1:
            out[pos] = 46
            pos = _put_int(out, pos + 1, ns % 10 ** (k - 1), k - 1)
        out[pos] = 101  # 'e'
        out[pos + 1] = 45
        return _put_int(out, pos + 2, 9 - cut - (k - 1), 0)
    whole, frac = ns // 1_000_000_000, ns % 1_000_000_000
    fraction_digits = 9 if frac else 0
    while frac and frac % 10 == 0:
        frac //= 10
        fraction_digits -= 1
    significant = _digits(whole) + fraction_digits if whole else _digits(frac)
    if significant > 15:
        return -1
    pos = _put_int(out, pos, whole, 0)
    if fraction_digits:
        out[pos] = 46
        pos = _put_int(out, pos + 1, frac, fraction_digits)
    return pos


@jit.kernel
def _write_rows(values: np.ndarray, kinds: np.ndarray, first_name: np.ndarray,
                name_ends: np.ndarray, name_bytes: np.ndarray, out: np.ndarray) -> int:
    """Rows of ``values`` (n, columns) as CSV lines into ``out``; the bytes written, or
    -1 when a duration needs the Arrow writer. A CODED cell is a name's number in its
    column's list (first_name[column] on in name_ends, NONE: empty)."""
    pos = 0
    n, m = values.shape
    for i in range(n):
        for j in range(m):
            if j:
                out[pos] = 44  # ','
                pos += 1
            v = values[i, j]
            if v == NONE:
                continue
            kind = kinds[j]
            if kind == INTEGER:
                pos = _put_signed(out, pos, v)
            elif kind == CODED:
                name = first_name[j] + v
                start = 0 if name == 0 else name_ends[name - 1]
                for b in range(start, name_ends[name]):
                    out[pos] = name_bytes[b]
                    pos += 1
            elif kind == ISO_TIME:
                pos = _put_time(out, pos, v)
            else:
                pos = _put_seconds(out, pos, v)
                if pos < 0:
                    return -1
        out[pos] = 10  # '\n'
        pos += 1
    return pos


def _column(values: Values, dtype: str) -> tuple[int, np.ndarray, list[str]]:
    """(kind, int64 cells with NONE for missing, names of a CODED column)."""
    if isinstance(values, Coded):
        return CODED, np.where(values.codes < 0, NONE, values.codes.astype(np.int64)), values.names
    if isinstance(values, Masked):
        return INTEGER, np.where(values.missing, NONE, values.values.astype(np.int64)), []
    if dtype == TIME:
        return ISO_TIME, values.astype(np.int64), []
    if dtype == DURATION:
        return SECONDS, values.astype(np.int64), []
    if dtype == "object":  # tunnel_parents: tuples of ids; only tunnelled rows have text
        cells = np.full(len(values), NONE, dtype=np.int64)
        tunnelled = tunnelled_rows(values)
        cells[tunnelled] = np.arange(len(tunnelled))
        return CODED, cells, ids_text(values[tunnelled])
    return INTEGER, values.astype(np.int64), []


def csv_rows(records: FlowRecords) -> bytes | None:
    """The CSV lines (no header) of ``records`` in FLOW_COLUMNS order, as
    export.flows_table writes them; None where that writer is needed (module)."""
    if jit.interpreted():
        return None
    cols = flow_columns(records)
    n, m = len(records), len(FLOW_COLUMNS)
    values = np.empty((n, m), dtype=np.int64)
    kinds = np.empty(m, dtype=np.int8)
    first_name = np.zeros(m, dtype=np.int64)
    names: list[bytes] = []
    width = m  # the commas and the newline
    for j, column in enumerate(FLOW_COLUMNS):
        kind, values[:, j], coded = _column(cols[column.name], column.dtype)
        kinds[j], first_name[j] = kind, len(names)
        encoded = [name.encode("utf-8") for name in coded]
        names += encoded
        width += max(map(len, encoded), default=0) if kind == CODED else _WIDTH[kind]
    text = b"".join(names)
    if any(c in text for c in _SPECIAL):
        return None
    name_ends = np.cumsum([len(b) for b in names], dtype=np.int64)
    out = np.empty(n * width, dtype=np.uint8)
    used = _write_rows(values, kinds, first_name, name_ends,
                       np.frombuffer(text or b"\0", dtype=np.uint8), out)
    return None if used < 0 else out[:used].tobytes()


def flows_csv(records: FlowRecords) -> CsvLines | pa.Table:
    """The flows of ``records`` for CsvWriter: written by the compiled loop, or the
    Arrow table of export.flows_table where the loop leaves them to it."""
    lines = csv_rows(records)
    if lines is None:
        return flows_table(records)
    return CsvLines(",".join(c.name for c in FLOW_COLUMNS), lines, len(records))
