"""Safe vectorized reads of headers at per-frame byte positions, and row helpers.

Every decoder reads through a ``ByteView``: a header is a table of fields (a
numpy structured dtype, as dpkt's ``__hdr__``), and one gather copies the
whole header of every frame at a layer. No read can leave the buffer, whatever
a garbage length or offset says; the caller decides, from each frame's
captured end, which values are real (a value read past a frame's end is
discarded and the row gets ``Status.TRUNCATED``). Multi-byte fields are big
endian (network byte order) unless the table says ``<``. ``column`` turns a
field into ``int64``, so that header arithmetic stays in one signed type
(numpy turns uint64 op int64 into float).

``Cursor`` is the set of frames at one layer: their rows in the chunk, the
position of the current header and the end of what was captured. ``put``
writes a column for those rows; ``clear_cut`` undoes the fields a cut frame
did not really have.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from tracker.packets import PacketBatch, Status

# The largest header read at once (bytes); reads this close to the end of the
# buffer go to a zero-padded copy of its tail.
MAX_HEADER = 64

# Rows of a chunk's PacketBatch that a layer works on: slice(None) for all of
# them (the common case: writes are plain copies), else an index array.
Rows = np.ndarray | slice


def _strided(buf: np.ndarray, width: int) -> np.ndarray:
    """A read-only view whose element i is the ``width`` bytes from byte i (void dtype)."""
    count = buf.shape[0] - width + 1
    return np.ndarray((count,), dtype=np.dtype(f"V{width}"), buffer=buf, offset=0, strides=(1,))


class _Views:
    """One buffer, and byte-strided views of it for gathers of whole headers."""

    __slots__ = ("_records", "buf")

    def __init__(self, buf: np.ndarray) -> None:
        self.buf = buf
        self._records: dict[int, np.ndarray] = {}

    def records(self, width: int) -> np.ndarray:
        """The view whose element i is the ``width`` bytes from byte i."""
        view = self._records.get(width)
        if view is None:
            view = self._records[width] = _strided(self.buf, width)
        return view


class ByteView:
    """A frame buffer to read headers from, at per-frame positions.

    A header is read as one record per frame of a numpy structured dtype that
    spells out the header's fields at their byte offsets (the header table):
    one gather of a void-dtype view copies all of its bytes at once, and each
    field is then a view that converts to a column in one step.

    Positions are never negative (frame starts plus header lengths). A header
    that would run past the end of the buffer is read from ``tail``, a copy of
    the buffer's last ``MAX_HEADER`` bytes followed by as many zeros, so the
    fields that were captured still come out right and nothing is read outside
    any array.
    """

    __slots__ = ("main", "size", "tail", "tail_start")

    def __init__(self, data: np.ndarray) -> None:
        buf = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        if buf.shape[0] < MAX_HEADER:
            buf = np.concatenate([buf, np.zeros(MAX_HEADER - buf.shape[0], np.uint8)])
        self.size = int(buf.shape[0])
        self.tail_start = self.size - MAX_HEADER
        self.main = _Views(buf)
        self.tail = _Views(np.concatenate([buf[self.tail_start:], np.zeros(MAX_HEADER, np.uint8)]))

    def records(self, pos: np.ndarray, table: np.dtype) -> np.ndarray:
        """The ``table.itemsize`` bytes at each position, as records of ``table``."""
        width = table.itemsize
        if not 0 < width <= MAX_HEADER:
            raise ValueError(f"header size {width} not in 1..{MAX_HEADER}")
        limit = self.size - width
        late = pos > limit
        if late.any():
            got = self.main.records(width)[np.minimum(pos, limit)]
            got[late] = self.tail.records(width)[np.minimum(pos[late], self.size)
                                                 - self.tail_start]
        else:
            got = self.main.records(width)[pos]
        return got.view(table)

    def u8(self, pos: np.ndarray) -> np.ndarray:
        """The byte at each position, as int64 (a byte past the buffer is some byte)."""
        return self.main.buf[np.minimum(pos, self.size - 1)].astype(np.int64)


def header(*table: tuple[Any, ...]) -> np.dtype:
    """A header table: (field, numpy type) in wire order, packed, as a structured dtype."""
    return np.dtype(list(table))


def column(records: np.ndarray, name: str) -> np.ndarray:
    """One field of every record, as int64."""
    return records[name].astype(np.int64)


def subset(rows: Rows, which: np.ndarray) -> np.ndarray:
    """The rows picked by ``which``: a bool per row of ``rows``, or positions in it."""
    if isinstance(rows, slice):
        return np.flatnonzero(which) if which.dtype == np.bool_ else which
    return rows[which]


def put(col: np.ndarray, rows: Rows, values: np.ndarray | int,
        where: np.ndarray | None = None) -> None:
    """``col[rows] = values`` (optionally only ``where``), cast first (faster)."""
    if where is None and isinstance(rows, slice):
        col[rows] = values  # casts as it copies
        return
    if isinstance(values, np.ndarray):
        values = values.astype(col.dtype, copy=False)  # a scatter is faster without a cast
    if where is None:
        col[rows] = values
    elif not where.any():
        return
    elif isinstance(rows, slice):
        np.copyto(col[rows], values, casting="unsafe", where=where)
    else:
        col[rows[where]] = values[where] if isinstance(values, np.ndarray) else values


@dataclass(slots=True)
class Cursor:
    """Frames at one layer: chunk rows, current header position, captured end."""

    rows: Rows  # which rows of the chunk's PacketBatch (see Rows)
    pos: np.ndarray  # int64 position of the current header in the buffer
    end: np.ndarray  # int64 first position past the frame's captured bytes

    def __len__(self) -> int:
        return int(self.pos.shape[0])

    def select(self, mask: np.ndarray) -> Cursor:
        """The frames where ``mask`` (one bool per frame of this cursor) is true."""
        if mask.all():
            return self
        return Cursor(subset(self.rows, mask), self.pos[mask], self.end[mask])

    def avail(self) -> np.ndarray:
        """Captured bytes from the current header to the frame's end (may be < 0)."""
        return self.end - self.pos


# NONE value of every PacketBatch column (-1, 0 or False), to undo fields
# that were read past a frame's captured end.
_EMPTY = PacketBatch.empty(1)
_NONE = {f.name: getattr(_EMPTY, f.name)[0] for f in fields(PacketBatch)}


def set_status(out: PacketBatch, rows: Rows, mask: np.ndarray, status: Status) -> None:
    """Give ``status`` to the rows where ``mask`` is true."""
    if mask.any():
        put(out.status, rows, int(status), mask)


def clear_cut(out: PacketBatch, rows: Rows, avail: np.ndarray,
              table: tuple[tuple[str, int], ...]) -> None:
    """Reset the fields of ``table`` (name, byte end) that lie past ``avail`` bytes.

    Decoders write every field of a header for all its rows at once; this
    undoes, on the rare rows whose capture (or length field) ends inside the
    header, the fields whose last byte was not really there.
    """
    cut = avail < max(byte_end for _, byte_end in table)
    if not cut.any():
        return
    cut_rows, cut_avail = subset(rows, cut), avail[cut]
    for name, byte_end in table:
        gone = cut_avail < byte_end
        if gone.any():
            getattr(out, name)[cut_rows[gone]] = _NONE[name]
