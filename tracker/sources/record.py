"""Writing captured frames to a pcap file as they come (``tracker live -w``).

The file is classic pcap with nanosecond timestamps (magic ``a1b23c4d``,
draft-ietf-opsawg-pcap), written batch by batch and flushed after each, so it
is a valid capture whenever the capture stops: every record in it is whole.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from tracker.frames import FrameBatch
from tracker.sources.base import FrameSource

PCAP_NS_MAGIC = 0xA1B23C4D


class PcapWriter:
    """Appends FrameBatches to a nanosecond pcap file of one link type."""

    def __init__(self, f: BinaryIO, linktype: int, snaplen: int) -> None:
        self._f = f
        self.linktype = linktype
        f.write(struct.pack("<IHHiIII", PCAP_NS_MAGIC, 2, 4, 0, 0, snaplen, linktype))
        f.flush()

    def write(self, batch: FrameBatch) -> None:
        n = len(batch)
        if not n:
            return
        caplen = batch.caplen.astype(np.int64)
        head = np.empty((n, 4), dtype="<u4")  # ts_sec, ts_nsec, incl_len, orig_len
        head[:, 0] = batch.ts_ns // 1_000_000_000
        head[:, 1] = batch.ts_ns % 1_000_000_000
        head[:, 2] = caplen
        head[:, 3] = batch.wire_len
        record = 16 + caplen
        at = np.cumsum(record) - record  # where each record starts in the buffer
        buf = np.empty(int(record.sum()), dtype=np.uint8)
        buf[(at[:, None] + np.arange(16)).ravel()] = head.view(np.uint8).ravel()
        within = np.arange(int(caplen.sum())) - np.repeat(np.cumsum(caplen) - caplen, caplen)
        buf[np.repeat(at + 16, caplen) + within] = \
            batch.data[np.repeat(batch.start.astype(np.int64), caplen) + within]
        self._f.write(buf.tobytes())
        self._f.flush()


class Recording:
    """A FrameSource that writes every frame of another one to a pcap file on the way."""

    def __init__(self, source: FrameSource, writer: PcapWriter) -> None:
        self._source, self._writer = source, writer
        self.name = source.name

    @property
    def records(self) -> int:
        return self._source.records

    @property
    def bytes_read(self) -> int:
        return self._source.bytes_read

    @property
    def size(self) -> int | None:
        return self._source.size

    @property
    def dropped(self) -> int | None:
        return self._source.dropped

    def now_ns(self) -> int | None:
        return self._source.now_ns()

    def __iter__(self) -> Iterator[FrameBatch]:
        for batch in self._source:
            self._writer.write(batch)
            yield batch

    def close(self) -> None:
        self._source.close()
