"""Several capture files read as one capture: rotated files (``tcpdump -C`` / ``-G``).

>>> src = open_captures(["captures/nanosecond.pcap", "captures/gzip.pcap.gz"])
>>> [name.split("/")[-1] for name in src.names]     # in the order of their first timestamps
['gzip.pcap.gz', 'nanosecond.pcap']

Files are read in the order of the timestamp of their first frame (a file
without frames goes last), whatever their names or formats (any mix of pcap,
pcapng and gzip). Frames are numbered on across files, so a frame number
names one frame of the whole capture, and a connection that spans files is
one flow. Every file is opened and checked before anything is read, so a file
that is not a capture stops the run before any output.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import replace

from tracker.frames import FrameBatch
from tracker.sources.files import CaptureReader, open_capture

Path = str | os.PathLike[str]
# What first_timestamp reads at a time: the reader reads on when the first record is
# longer. A first batch of 64 KB (~250 frames) took 2 ms a file to decode, 20 s before a
# cluster read of 10,000 files could start; 4 KB take 0.15 ms.
PEEK_BYTES = 4 << 10


def first_timestamp(path: Path) -> int | None:
    """The timestamp of the file's first frame in ns, None when it has none."""
    with open_capture(path, batch_bytes=PEEK_BYTES) as reader:
        for batch in reader:
            if len(batch):
                return int(batch.ts_ns[0])
    return None


class CaptureSet:
    """A FrameSource over several capture files, one after the other (see the module)."""

    def __init__(self, paths: Sequence[Path], *, batch_bytes: int = 4 << 20) -> None:
        firsts = [first_timestamp(p) for p in paths]
        never = max((t for t in firsts if t is not None), default=0) + 1
        order = sorted(range(len(paths)), key=lambda i: (firsts[i] is None,
                                                         firsts[i] or never, i))
        self.paths = [paths[i] for i in order]
        self.names = [os.fspath(p) for p in self.paths]
        self.name = self.names[0] if len(self.names) == 1 else \
            f"{self.names[0]} and {len(self.names) - 1} more"
        self._batch_bytes = batch_bytes
        self._done_records = 0
        self._done_bytes = 0
        self._reader: CaptureReader | None = None
        sizes = [os.path.getsize(p) if os.path.isfile(p) else None for p in self.names]
        self._size = None if None in sizes else sum(s or 0 for s in sizes)

    @property
    def records(self) -> int:
        return self._done_records + (self._reader.records if self._reader else 0)

    @property
    def bytes_read(self) -> int:
        return self._done_bytes + (self._reader.bytes_read if self._reader else 0)

    @property
    def size(self) -> int | None:
        return self._size

    @property
    def dropped(self) -> None:
        return None

    def now_ns(self) -> None:
        return None

    def __iter__(self) -> Iterator[FrameBatch]:
        for path in self.paths:
            with open_capture(path, batch_bytes=self._batch_bytes) as reader:
                self._reader = reader
                offset = self._done_records
                for batch in reader:
                    yield replace(batch, first_record=batch.first_record + offset)
                self._done_records += reader.records
                self._done_bytes += reader.bytes_read
                self._reader = None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def open_captures(paths: Sequence[Path], *, batch_bytes: int = 4 << 20) -> CaptureSet:
    """Several capture files as one FrameSource, in the order of their first timestamps."""
    return CaptureSet(paths, batch_bytes=batch_bytes)
