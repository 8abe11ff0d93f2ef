"""Capture files: classic pcap, pcapng, and gzip of either, streamed as FrameBatches.

>>> with open_capture("trace.pcap") as cap:            # doctest: +SKIP
...     for batch in cap:                                # FrameBatch, one link type each
...         print(cap.format, batch.linktype, len(batch), cap.bytes_read, cap.size)

The format is told by the first bytes, never by the name: pcap magic
``a1b2c3d4`` (microseconds), ``a1b23c4d`` (nanoseconds) or ``a1b2cd34``
(Kuznetzov's modified pcap) in either byte order; a pcapng section header
block ``0a0d0d0a``; or gzip ``1f8b`` around either, decompressed as a stream.

The file is read in chunks of about ``batch_bytes``; a record cut by the end
of a chunk is carried over to the next one, so memory is bounded by the chunk
size, never by the file. Frames stay in the chunk they were read into (a new
buffer per chunk, never reused, so a batch stays valid after the reader moves
on). The record walk is :mod:`tracker.sources._walk`; everything here is per
chunk or per block.

Record and block numbers in messages count from 0 (the record number of frame
i of a batch is ``batch.first_record + i``); byte offsets count from the start
of the file, or of the decompressed stream for gzip.
"""

from __future__ import annotations

import gzip
import os
import stat
import struct
import sys
import warnings
import zlib
from collections.abc import Generator, Iterator
from types import TracebackType
from typing import Any, BinaryIO, Self

import numpy as np

from tracker.errors import (
    CaptureError,
    CorruptCaptureError,
    NotACaptureError,
    OptionError,
    TimestampWarning,
    TruncatedCaptureWarning,
)
from tracker.frames import FrameBatch
from tracker.sources import _walk
from tracker.sources._pcap import PCAP_HEADER_LEN, PCAP_MAGICS, PcapWalk
from tracker.sources._pcapng import BOM_BIG, BOM_LITTLE, SHB_MIN_LEN, PcapngWalk
from tracker.sources.base import BlockError, FormatWalk

__all__ = ["CaptureReader", "open_capture"]

GZIP_MAGIC = b"\x1f\x8b"  # RFC 1952 section 2.3.1
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"  # SHB block type, draft-ietf-opsawg-pcapng 4.1
PEEK = 32  # bytes looked at to tell the format
EXPECTED = (
    "expected a pcap magic (a1b2c3d4 or a1b23c4d, either byte order), "
    "pcapng (0a0d0d0a) or gzip (1f8b)"
)


class _Counted:
    """A byte source that serves peeked bytes first and counts what it read."""

    def __init__(self, f: Any, *, short_reads: bool = False) -> None:
        self._f = f
        # gzip: one readinto1 per call, so a fault loses only that call's data
        # (readinto would lose all it had decompressed into the buffer).
        self._readinto = f.readinto1 if short_reads else getattr(f, "readinto", None)
        self._pending = b""
        self.count = 0  # bytes taken from ``f`` so far

    @property
    def delivered(self) -> int:
        """Bytes handed on so far (taken minus still pending)."""
        return self.count - len(self._pending)

    def peek(self, n: int) -> bytes:
        """Return up to ``n`` first bytes without consuming them."""
        while len(self._pending) < n:
            more = self._f.read(n - len(self._pending))
            if not more:
                break
            self._pending += more
            self.count += len(more)
        return self._pending[:n]

    def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (all when negative); used by gzip."""
        if self._pending:
            k = len(self._pending) if n < 0 else min(n, len(self._pending))
            out, self._pending = self._pending[:k], self._pending[k:]
            return out
        data: bytes = self._f.read(n)
        self.count += len(data)
        return data

    def readinto(self, b: memoryview) -> int:
        """Fill ``b`` with up to ``len(b)`` bytes; 0 means end of stream."""
        if self._pending or self._readinto is None:
            data = self.read(len(b))
            b[: len(data)] = data
            return len(data)
        k = self._readinto(b) or 0
        self.count += k
        return int(k)


class _Chunk:
    """The part of the stream in memory: ``buf[pos:end]`` is not walked yet."""

    def __init__(self, src: _Counted, batch_bytes: int, left: Any) -> None:
        self.buf = np.empty(0, np.uint8)
        self.pos = 0
        self.end = 0
        self.base = 0  # stream offset of buf[0]
        self.eof = False
        self.error: BaseException | None = None  # a read fault, kept for after the walk
        self._src, self._batch, self._left = src, batch_bytes, left

    @property
    def offset(self) -> int:
        """Stream offset of ``pos``."""
        return self.base + self.pos

    def frozen(self) -> np.ndarray:
        """A read-only view of the filled part of the buffer, shared by its batches."""
        data = self.buf[: self.end]
        data.flags.writeable = False
        return data

    def refill(self, need: int) -> None:
        """Move the unwalked tail into a new buffer and read at least ``need`` bytes in all."""
        carry = self.end - self.pos
        want = max(self._batch, need)
        left = self._left()
        if left is not None:  # +1 so that the end of a regular file is seen at once
            want = min(want, max(need, carry + max(left, 0) + 1))
        buf = np.empty(want, np.uint8)
        buf[:carry] = self.buf[self.pos : self.end]
        self.base += self.pos
        self.buf, self.pos, self.end = buf, 0, carry
        view = buf.data
        while self.end < want:
            try:
                k = self._src.readinto(view[self.end : want])
            except (
                OSError,
                EOFError,
                zlib.error,
            ) as err:  # gzip faults; OSError covers BadGzipFile
                self.error, self.eof = err, True
                return
            if not k:
                self.eof = True
                return
            self.end += k


class CaptureReader:
    """Iterator of FrameBatch over one capture file; use it as a context manager.

    A ``FrameSource`` (tracker/sources/base.py): nothing is dropped from a
    file, and only packet time counts.

    Attributes:
        name: the path as given, ``"<stdin>"`` for ``-``, or the file object's name.
        format: ``"pcap"`` or ``"pcapng"`` (told by content).
        compressed: True when the file is gzip.
        nanosecond: pcap: True for nanosecond timestamps; None for pcapng
            (each interface has its own resolution).
        records: frames yielded so far.
        size: file size in bytes, or None for pipes and streams.
        linktypes: link types declared so far (pcap header, pcapng interfaces).
    """

    def __init__(
        self,
        name: str,
        raw: _Counted,
        src: _Counted,
        fmt: FormatWalk,
        *,
        compressed: bool,
        size: int | None,
        batch_bytes: int,
        closers: list[Any],
    ) -> None:
        self.name, self.compressed, self.size = name, compressed, size
        self.format: str = fmt.format
        self.records = 0
        self._raw, self._fmt, self._closers = raw, fmt, closers
        left = (
            (lambda: size - raw.delivered)
            if size is not None and not compressed
            else (lambda: None)
        )
        self._chunk = _Chunk(src, batch_bytes, left)
        self._gen = self._run()

    @property
    def nanosecond(self) -> bool | None:
        return self._fmt.nanosecond

    @property
    def dropped(self) -> None:
        """A file drops nothing."""
        return None

    def now_ns(self) -> None:
        """Files have no wall clock: idle flows expire by packet time only."""
        return

    @property
    def linktypes(self) -> set[int]:
        return set(self._fmt.linktypes)

    @property
    def bytes_read(self) -> int:
        """Bytes taken from the file so far (compressed bytes for gzip)."""
        return self._raw.count

    def __iter__(self) -> Iterator[FrameBatch]:
        return self

    def __next__(self) -> FrameBatch:
        return next(self._gen)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading and close what open_capture opened (never stdin or a caller's file)."""
        self._gen.close()
        self._close_files()

    def _close_files(self) -> None:
        for c in self._closers:
            c.close()
        self._closers = []

    def __repr__(self) -> str:
        gz = " gzip" if self.compressed else ""
        return f"<CaptureReader {self.name!r} {self.format}{gz} records={self.records}>"

    def _run(self) -> Generator[FrameBatch, None, None]:
        fmt, ch = self._fmt, self._chunk
        if fmt.header_len:
            ch.refill(fmt.header_len)
            ch.pos = fmt.header_len
        while True:
            batch, status, extra = fmt.step(ch, self.records)
            if batch is not None:
                self.records += len(batch)
                yield batch
            if status in (_walk.FULL, _walk.LINK_CHANGE):
                continue
            if status == _walk.BLOCK:
                extra = self._guard(fmt.parse_block, ch)
                if not extra:
                    continue
                status = _walk.NEED_MORE
            if status != _walk.NEED_MORE:
                raise CorruptCaptureError(
                    f"{self.name}: {self._where()}: {fmt.corrupt(status, extra)}"
                )
            if not ch.eof:
                ch.refill(extra)
                continue
            self._close_files()  # done: do not hold the file until the reader is dropped
            self._finish(extra)
            return

    def _guard(self, fn: Any, *args: Any) -> Any:
        """Call a format method; a BlockError becomes a CorruptCaptureError with the position."""
        try:
            return fn(*args)
        except BlockError as err:
            raise CorruptCaptureError(f"{self.name}: {self._where()}: {err}") from None

    def _where(self) -> str:
        text: str = self._fmt.where(self._chunk, self.records)
        return text + (" of the decompressed stream" if self.compressed else "")

    def _finish(self, need: int) -> None:
        """At the end: warn about NaT times and a cut record; raise on a read fault."""
        ch, fmt = self._chunk, self._fmt
        if fmt.nat:
            warnings.warn(
                f"{self.name}: {fmt.nat} records have a timestamp outside int64 nanoseconds "
                "(before 1677 or after 2262); they got NaT",
                TimestampWarning,
                stacklevel=4,
            )
        cut = f"{self._where()}: {self._guard(fmt.cut, ch, need)}" if ch.pos < ch.end else ""
        if isinstance(ch.error, EOFError):
            cut = (cut + "; " if cut else "") + "the gzip stream ends before its end marker"
        elif ch.error is not None:
            kind = "broken gzip stream after compressed" if self.compressed else "read error after"
            raise CaptureError(
                f"{self.name}: {kind} byte {self._raw.count}: {ch.error}; "
                f"the {self.records} frames before were kept"
            ) from ch.error
        if cut:
            warnings.warn(
                f"{self.name}: {cut}; the {self.records} frames before it are kept",
                TruncatedCaptureWarning,
                stacklevel=4,
            )


def open_capture(
    source: str | os.PathLike[str] | BinaryIO, *, batch_bytes: int = 4 << 20
) -> CaptureReader:
    """Open a pcap, pcapng or gzip capture for streaming, telling the format by content.

    Args:
        source: a path, ``"-"`` for standard input, or a binary file object
            (which stays open: the caller owns it).
        batch_bytes: about how many bytes to read at a time; memory use is a
            small multiple of it (more only for a single record larger than it).

    Raises:
        NotACaptureError: empty, too short, or not pcap, pcapng or gzip.
        CaptureError: the file cannot be opened, or the gzip header is broken.

    >>> with open_capture("trace.pcapng.gz") as cap:     # doctest: +SKIP
    ...     n = sum(len(b) for b in cap)
    """
    if not isinstance(batch_bytes, int) or batch_bytes < 1:
        raise OptionError(f"batch_bytes={batch_bytes!r}: expected a positive number of bytes")
    name, f, closers = _open_source(source)
    try:
        return _detect(name, f, closers, _size_of(f), batch_bytes)
    except BaseException:
        for c in closers:
            c.close()
        raise


def _open_source(source: str | os.PathLike[str] | BinaryIO) -> tuple[str, Any, list[Any]]:
    """Return (name, binary file object, what to close at the end)."""
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if name == "-":
            return "<stdin>", sys.stdin.buffer, []
        try:
            # Unbuffered: chunks are read straight into numpy. The reader closes it.
            f = open(name, "rb", buffering=0)  # noqa: SIM115
        except OSError as err:
            raise CaptureError(f"{name}: cannot open: {err.strerror or err}") from err
        return name, f, [f]
    label = getattr(source, "name", None)
    return (label if isinstance(label, str) else "<stream>"), source, []


def _size_of(f: Any) -> int | None:
    """Size of a regular file, None for pipes, terminals and in-memory streams."""
    try:
        st = os.fstat(f.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _detect(
    name: str, f: Any, closers: list[Any], size: int | None, batch_bytes: int
) -> CaptureReader:
    """Look at the first bytes (through gzip if it is gzip) and build the reader."""
    raw = _Counted(f)
    head = raw.peek(PEEK)
    src, compressed = raw, head[:2] == GZIP_MAGIC
    if compressed:
        gz = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[call-overload]
        closers.insert(0, gz)
        src = _Counted(gz, short_reads=True)
        try:
            head = src.peek(PEEK)
        except (OSError, EOFError, zlib.error) as err:
            raise CaptureError(
                f"{name}: broken gzip stream after compressed byte {raw.count}: {err}"
            ) from err
    fmt = _format(name, head, compressed)
    return CaptureReader(
        name,
        raw,
        src,
        fmt,
        compressed=compressed,
        size=size,
        batch_bytes=batch_bytes,
        closers=closers,
    )


def _format(name: str, head: bytes, compressed: bool) -> PcapWalk | PcapngWalk:
    """Tell pcap from pcapng by the first bytes, or raise NotACaptureError."""
    what = "the gzip stream holds" if compressed else "the file has"
    if not head:
        raise NotACaptureError(f"{name}: {what} 0 bytes; {EXPECTED}")
    shown = f"first bytes {head[:16].hex(' ')}"
    if head[:4] == PCAPNG_MAGIC:
        if len(head) < SHB_MIN_LEN:
            raise NotACaptureError(
                f"{name}: {what} only {len(head)} bytes ({shown}); "
                f"a pcapng section header needs {SHB_MIN_LEN}"
            )
        if head[8:12] not in (BOM_LITTLE, BOM_BIG):
            raise NotACaptureError(
                f"{name}: pcapng block type but byte-order magic "
                f"{head[8:12].hex()} ({shown}); expected 1a2b3c4d in either order"
            )
        return PcapngWalk()
    for order in "<>":
        if len(head) >= 4 and struct.unpack_from(order + "I", head)[0] in PCAP_MAGICS:
            if len(head) < PCAP_HEADER_LEN:
                raise NotACaptureError(
                    f"{name}: {what} only {len(head)} bytes ({shown}); "
                    f"a pcap file header needs {PCAP_HEADER_LEN}"
                )
            return PcapWalk(head)
    raise NotACaptureError(f"{name}: not a capture: {shown}; {EXPECTED}")
