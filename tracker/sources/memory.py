"""In-memory sources, for tests and notebooks: a capture file image, or bare frames.

>>> from tracker.sources.memory import MemorySource, frame_batches
>>> [len(b) for b in frame_batches([b"\\x00" * 60] * 5, batch_frames=2)]
[2, 2, 1]
>>> src = MemorySource(frame_batches([b"\\x00" * 60] * 5, batch_frames=2))
>>> sum(len(b) for b in src), src.records, src.bytes_read
(5, 5, 300)
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence

from tracker.frames import LINKTYPE_ETHERNET, FrameBatch
from tracker.sources.files import CaptureReader, open_capture

__all__ = ["MemorySource", "frame_batches", "open_bytes"]


class _NamedBytesIO(io.BytesIO):
    """A BytesIO with a name, so that messages say which buffer is meant."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name


def open_bytes(
    data: bytes | bytearray | memoryview, *, name: str = "<memory>", batch_bytes: int = 4 << 20
) -> CaptureReader:
    """Read a whole capture file (pcap, pcapng or gzip) held in memory.

    Same reader, checks and errors as :func:`tracker.sources.files.open_capture`.
    """
    return open_capture(_NamedBytesIO(bytes(data), name), batch_bytes=batch_bytes)


def frame_batches(
    frames: Sequence[bytes],
    *,
    linktype: int = LINKTYPE_ETHERNET,
    ts_ns: Sequence[int] | None = None,
    wire_len: Sequence[int] | None = None,
    batch_frames: int = 4096,
) -> Iterator[FrameBatch]:
    """Cut ready frames into FrameBatches of at most ``batch_frames``, records numbered from 0.

    ``ts_ns`` defaults to 0, 1, 2, ... ns; ``wire_len`` to each frame's length.
    """
    for lo in range(0, len(frames), max(batch_frames, 1)):
        hi = min(lo + max(batch_frames, 1), len(frames))
        yield FrameBatch.from_frames(
            list(frames[lo:hi]),
            linktype=linktype,
            ts_ns=list(range(lo, hi)) if ts_ns is None else list(ts_ns[lo:hi]),
            wire_len=None if wire_len is None else list(wire_len[lo:hi]),
            first_record=lo,
        )


class MemorySource:
    """A FrameSource over FrameBatches held in memory (tracker/sources/base.py).

    ``clock`` stands in for a live source's wall clock: called after each
    batch, it returns the time up to which idle flows may expire (None: packet
    time only). ``dropped`` stands in for a kernel's drop count.
    """

    def __init__(self, batches: Iterable[FrameBatch], *, name: str = "<memory>",
                 clock: Callable[[], int | None] | None = None,
                 dropped: int | None = None) -> None:
        self.name = name
        self._batches = iter(batches)
        self._clock = clock
        self._dropped = dropped
        self._records = 0
        self._bytes = 0

    @property
    def records(self) -> int:
        return self._records

    @property
    def bytes_read(self) -> int:
        return self._bytes

    @property
    def size(self) -> None:
        return None

    @property
    def dropped(self) -> int | None:
        return self._dropped

    def now_ns(self) -> int | None:
        return None if self._clock is None else self._clock()

    def __iter__(self) -> Iterator[FrameBatch]:
        for batch in self._batches:
            self._records += len(batch)
            self._bytes += int(batch.caplen.sum())
            yield batch

    def close(self) -> None:
        self._batches = iter(())
