"""Safe vectorized reads of header fields at per-frame byte positions.

Every decoder reads through a ``ByteView``: one gather per field over all the
frames at a layer. Positions are clipped into the buffer before the gather, so
a garbage length or offset can never raise or read outside ``data``; the
caller decides, from each frame's captured end, which values are real (a value
read past a frame's end is discarded and the row gets ``Status.TRUNCATED``).

Multi-byte fields are big endian (network byte order) unless the name ends in
``le``. They are read through byte-strided views of the buffer (an unaligned
``>u8`` view whose element i starts at byte i), which needs one gather per
field instead of one per byte. Results are native ``int64`` so that all header
arithmetic stays in one signed type (numpy turns uint64 op int64 into float).

``Cursor`` is the set of frames at one layer: their row numbers in the chunk,
the position of the current header and the end of what was captured.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from tracker.packets import PacketBatch, Status

# The largest header read at once (bytes); reads this close to the end of the
# buffer go to a zero-padded copy of its tail.
MAX_HEADER = 64

# Rows of a chunk's PacketBatch that a layer works on: slice(None) for all of
# them (the common case: writes are plain copies), else an index array.
Rows = np.ndarray | slice


def _strided(buf: np.ndarray, dtype: str, width: int) -> np.ndarray:
    """A read-only view whose element i is the ``width``-byte value at byte i."""
    count = buf.shape[0] - width + 1
    return np.ndarray((count,), dtype=np.dtype(dtype), buffer=buf, offset=0, strides=(1,))


class _Views:
    """Strided views of one buffer for 1-, 2-, 4- and 8-byte reads."""

    __slots__ = ("be16", "be32", "be64", "le16", "le32", "u8")

    def __init__(self, buf: np.ndarray) -> None:
        self.u8 = buf
        self.be16 = _strided(buf, ">u2", 2)
        self.be32 = _strided(buf, ">u4", 4)
        self.be64 = _strided(buf, ">i8", 8)  # signed: masks after shifts keep values right
        self.le16 = _strided(buf, "<u2", 2)
        self.le32 = _strided(buf, "<u4", 4)


class ByteView:
    """A frame buffer to read header fields from, at per-frame positions.

    Positions are never negative (frame starts plus header lengths). A header
    that would run past the end of the buffer is read from ``tail``, a copy of
    the buffer's last ``MAX_HEADER`` bytes followed by as many zeros: a wide
    read (one 8-byte gather for several fields) then still gets the captured
    fields right, and nothing is read outside any array.
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

    def header(self, pos: np.ndarray, size: int) -> Header:
        """Reads inside a ``size``-byte header at each position."""
        if not 0 < size <= MAX_HEADER:
            raise ValueError(f"header size {size} not in 1..{MAX_HEADER}")
        limit = self.size - size
        late = pos > limit
        if not late.any():
            return Header(self, pos, size, None)
        return Header(self, np.minimum(pos, limit), size, late,
                      np.minimum(pos[late], self.size) - self.tail_start)


class Header:
    """Field reads at byte offsets of one header, for every frame at once.

    Every read is inside the buffer (or its tail copy); whether it is inside
    the frame is the caller's check.
    """

    __slots__ = ("_base", "_bv", "_late", "_size", "_tail_base")

    def __init__(self, bv: ByteView, base: np.ndarray, size: int, late: np.ndarray | None,
                 tail_base: np.ndarray | None = None) -> None:
        self._bv, self._base, self._size = bv, base, size
        self._late, self._tail_base = late, tail_base

    def _read(self, view: str, offset: int, width: int) -> np.ndarray:
        if not 0 <= offset <= self._size - width:
            raise ValueError(f"field {offset}+{width} outside a {self._size}-byte header")
        at = self._base + offset if offset else self._base
        values = getattr(self._bv.main, view)[at].astype(np.int64)
        if self._late is not None and self._tail_base is not None:
            values[self._late] = getattr(self._bv.tail, view)[self._tail_base + offset]
        return values

    def u8(self, offset: int) -> np.ndarray:
        """The byte at ``offset``, as int64."""
        return self._read("u8", offset, 1)

    def u16(self, offset: int) -> np.ndarray:
        """Big-endian 16-bit value at ``offset``, as int64."""
        return self._read("be16", offset, 2)

    def u32(self, offset: int) -> np.ndarray:
        """Big-endian 32-bit value at ``offset``, as int64."""
        return self._read("be32", offset, 4)

    def u64(self, offset: int) -> np.ndarray:
        """Big-endian 64 bits at ``offset``, as int64 bits (mask after shifting)."""
        return self._read("be64", offset, 8)

    def u64u(self, offset: int) -> np.ndarray:
        """Big-endian 64-bit value at ``offset``, as uint64 (IPv6 address halves)."""
        return self.u64(offset).view(np.uint64)

    def u16le(self, offset: int) -> np.ndarray:
        """Little-endian 16-bit value at ``offset``, as int64."""
        return self._read("le16", offset, 2)

    def u32le(self, offset: int) -> np.ndarray:
        """Little-endian 32-bit value at ``offset``, as int64."""
        return self._read("le32", offset, 4)


def subset(rows: Rows, which: np.ndarray) -> np.ndarray:
    """The rows picked by ``which``: a bool per row of ``rows``, or positions in it."""
    if isinstance(rows, slice):
        return np.flatnonzero(which) if which.dtype == np.bool_ else which
    return rows[which]


def put(column: np.ndarray, rows: Rows, values: np.ndarray | int,
        where: np.ndarray | None = None) -> None:
    """``column[rows] = values`` (optionally only ``where``), cast first (faster)."""
    if isinstance(values, np.ndarray):
        values = values.astype(column.dtype, copy=False)
    if where is None:
        column[rows] = values
    elif not where.any():
        return
    elif isinstance(rows, slice):
        np.copyto(column[rows], values, casting="unsafe", where=where)
    else:
        column[rows[where]] = values[where] if isinstance(values, np.ndarray) else values


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

    def moved(self, mask: np.ndarray, pos: np.ndarray) -> Cursor:
        """The frames where ``mask`` is true, now at ``pos`` (given for every frame)."""
        if mask.all():
            return Cursor(self.rows, pos, self.end)
        return Cursor(subset(self.rows, mask), pos[mask], self.end[mask])

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
