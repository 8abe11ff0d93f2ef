"""What every source offers the pipeline, and what the file formats share.

``FrameSource`` is the one interface of a source of frames: the file readers
implement it now; live capture, in-memory and many-file sources plug into the
pipeline the same way. The two other protocols are the file reader's inside:
a format walker (classic pcap, pcapng) steps through a ``Chunk`` of the file.
``BlockError`` is the walkers' one error; the reader adds the file name and
position and raises it as a ``CorruptCaptureError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from tracker.frames import FrameBatch


class FrameSource(Protocol):
    """A stream of FrameBatches, as the pipeline reads it.

    Attributes:
        name: what messages call the source (a path, ``<stdin>``, an interface).
        records: frames yielded so far.
        bytes_read: bytes taken from the source so far (compressed bytes for gzip).
        size: the total size in bytes when known (a regular file), else None.
        dropped: frames the kernel dropped before the source saw them (live
            capture); None when nothing can be dropped (files).
    """

    name: str

    @property
    def records(self) -> int: ...

    @property
    def bytes_read(self) -> int: ...

    @property
    def size(self) -> int | None: ...

    @property
    def dropped(self) -> int | None: ...

    def now_ns(self) -> int | None:
        """The wall clock for letting idle flows expire while no packets arrive
        (live capture), or None when only packet time counts (files)."""
        ...

    def __iter__(self) -> Iterator[FrameBatch]: ...

    def close(self) -> None: ...


class Chunk(Protocol):
    """The part of a capture file in memory: ``buf[pos:end]`` is not walked yet."""

    buf: np.ndarray
    pos: int
    end: int

    @property
    def offset(self) -> int:
        """Offset of ``pos`` in the file (or decompressed stream)."""
        ...

    def frozen(self) -> np.ndarray:
        """A read-only view of the filled part of ``buf``, shared by its batches."""
        ...


class FormatWalk(Protocol):
    """One capture file format: its header, its record walk, its messages."""

    @property
    def format(self) -> str:
        """``"pcap"`` or ``"pcapng"``."""
        ...

    @property
    def header_len(self) -> int:
        """Bytes of file header before the first record (0: read as blocks)."""
        ...

    @property
    def linktypes(self) -> set[int]:
        """The link types declared so far."""
        ...

    @property
    def nat(self) -> int:
        """Records whose timestamp does not fit int64 nanoseconds."""
        ...

    @property
    def nanosecond(self) -> bool | None:
        """pcap: nanosecond timestamps; pcapng: None (each interface has its own)."""
        ...

    def step(self, ch: Chunk, first: int) -> tuple[FrameBatch | None, int, int]:
        """Walk from ``ch.pos``; return (batch or None, walker status, extra)."""
        ...

    def parse_block(self, ch: Chunk) -> int:
        """Parse the block at ``ch.pos``; 0 when done, else the bytes it needs."""
        ...

    def where(self, ch: Chunk, records: int) -> str:
        """Where the walk stands, for messages (``record 12 at byte 4096``)."""
        ...

    def corrupt(self, status: int, extra: int) -> str:
        """What a walker failure means, for messages."""
        ...

    def cut(self, ch: Chunk, need: int) -> str:
        """Explain a record cut by the end of the file; raise BlockError if it is corrupt."""
        ...


class BlockError(Exception):
    """A record or block is broken; the reader adds the file name and position."""
