"""The streaming driver every source shares: source -> decode -> FlowTable -> finished flows.

>>> run = FlowRun("captures/tcp-handshake-fin.pcap", FlowOptions())
>>> [len(ended) for _, _, ended in run]         # one batch, then the flows open at the end
[0, 1]
>>> run.summary.line()
'11 frames (all decoded), 1 flows'

Sources are ``FrameSource``s (tracker/sources/base.py): the capture files
now; live capture, memory and many-file sources plug in the same way. A
source with a wall clock (live capture) lets idle flows expire while no
packets arrive, and its kernel drops land in the summary. A run can start
from a table carried over from an earlier part of a capture and end without
flushing it, so that a cluster driver stitches parts into the sequential
result. The printers in tracker/report/ take what a run yields, never the run.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import numpy as np

from tracker.decode import decode
from tracker.decode.bpf import BpfFilter
from tracker.decode.tunnel_fragments import candidates
from tracker.errors import CaptureError, OptionError
from tracker.flows import FlowOptions, FlowRecords, FlowTable
from tracker.flows.table import KernelBatch, carriers, prepare_batch
from tracker.frames import FrameBatch
from tracker.packets import PacketBatch
from tracker.report.summary import RunSummary
from tracker.sources.base import FrameSource
from tracker.sources.files import open_capture
from tracker.sources.rotated import open_captures

# What the public functions read: a path, "-" for standard input, several paths
# (rotated files, read as one capture), a binary file object, or any FrameSource.
Path = str | os.PathLike[str]
Source = Path | Sequence[Path] | BinaryIO | FrameSource


class Progress(Protocol):
    """Told after each batch how far the source is (tracker/report/progress.py)."""

    def update(self, bytes_read: int, size: int | None, frames: int) -> None: ...


def open_source(source: Source, *, batch_bytes: int | None = None) -> FrameSource:
    """A FrameSource for ``source``: a FrameSource as it is, a list of paths as one
    capture (in the order of their first timestamps), anything else a capture file."""
    size = {} if batch_bytes is None else {"batch_bytes": batch_bytes}
    if isinstance(source, (list, tuple)):
        paths = [os.fspath(p) for p in source]
        if not paths:
            raise OptionError("no capture given: expected one path or more")
        if len(paths) > 1 and "-" in paths:
            raise OptionError("'-' (standard input) cannot be read with other files")
        return open_capture(paths[0], **size) if len(paths) == 1 else \
            open_captures(paths, **size)
    if isinstance(source, (str, os.PathLike)) or hasattr(source, "read"):
        return open_capture(source, **size)  # type: ignore[arg-type]
    return source  # type: ignore[return-value]


def filtered(frames: FrameBatch, bpf: BpfFilter | None, checksums: bool) -> PacketBatch:
    """The decoded rows of the frames that the tcpdump filter keeps (all without one)."""
    packets = decode(frames, checksums=checksums)
    if bpf is None:
        return packets
    keep = bpf.matches(frames)
    return packets if keep.all() else packets.take(keep)


def iter_decoded(source: Source, progress: Progress | None = None, *,
                 batch_bytes: int | None = None, checksums: bool = True,
                 bpf: BpfFilter | None = None) -> Iterator[PacketBatch]:
    """The decoded headers of each batch of a capture, streaming.

    ``progress.update(bytes_read, size, frames)`` is called after each batch;
    ``batch_bytes`` sets how much of a file one batch reads (the reader's
    default); ``checksums=False`` skips verifying checksums; ``bpf`` keeps
    only the frames a tcpdump filter keeps.
    """
    src = open_source(source, batch_bytes=batch_bytes)
    try:
        for frames in src:
            yield filtered(frames, bpf, checksums)
            if progress is not None:
                progress.update(src.bytes_read, src.size, src.records)
    finally:
        src.close()


def made_ready(frames: FrameBatch, bpf: BpfFilter | None, options: FlowOptions
               ) -> tuple[FrameBatch | None, PacketBatch, KernelBatch | None]:
    """(frames, packets, ready): ``frames`` decoded (with the tcpdump filter) and made the
    flow table's input as far as no state is needed (FlowTable.prepare_batch; None for a
    batch with fragments or tunnels, which ``update`` takes); the frames are kept only
    where a tunnel may be opened (decode/payload.py's hint, or fragments of UDP datagrams,
    which decode/tunnel_fragments.py puts back together), the one use ``update`` has for
    them."""
    packets = filtered(frames, bpf, options.verify_checksums)
    ready = prepare_batch(packets, options)
    tunnel = ready is None and bool(packets.tunnel_hint.any() or candidates(packets).any())
    return (frames if tunnel else None), packets, ready


@dataclass
class Batch:
    """One batch on its way to the flow table: its frames, their decoded packets, the
    table's input when it could be made ahead (FlowTable.prepare_batch), and how far the
    source was when it was read (for progress)."""

    frames: FrameBatch | None
    packets: PacketBatch
    ready: KernelBatch | None
    bytes_read: int
    records: int


# How much capture the read-ahead thread may hold made and not yet walked: one of the
# library's 4 MiB batches, two of the command's 2 MiB ones. The second lets the
# thread go on while the command formats a chunk of finished flows (gen_pcap 5M csv:
# 2.84-3.02 -> 2.77-2.80 s, peak RSS +8-12 MB).
AHEAD_BYTES = 4 << 20


class ReadAhead:
    """Batches of ``src`` read, decoded and made ready in a thread of their own: the
    next ``batches`` while the one before is walked, and no further (memory stays that
    of ``batches`` + 1). An error of the source comes out where it happened, after the
    batches read before it; ``close`` stops the thread."""

    _END = object()

    def __init__(self, src: FrameSource, options: FlowOptions, bpf: BpfFilter | None,
                 batches: int = 1) -> None:
        self._src, self._options, self._bpf = src, options, bpf
        self._queue: queue.Queue[Any] = queue.Queue()
        self._room = threading.Semaphore(batches)  # batches made and not yet taken
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="tracker-read-ahead",
                                         daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            frames_of = iter(self._src)
            while self._wait_for_room():
                frames = next(frames_of, None)
                if frames is None:
                    break
                self._queue.put(Batch(*made_ready(frames, self._bpf, self._options),
                                      self._src.bytes_read, self._src.records))
            self._queue.put(self._END)
        except BaseException as err:  # noqa: BLE001 - handed to the reader, raised there
            self._queue.put(err)

    def _wait_for_room(self) -> bool:
        while not self._closed.is_set():
            if self._room.acquire(timeout=0.1):
                return True
        return False

    def __iter__(self) -> Iterator[Batch]:
        while (item := self._queue.get()) is not self._END:
            if isinstance(item, BaseException):
                raise item
            self._room.release()  # the next batch is read while this one is walked
            yield item

    def close(self) -> None:
        self._closed.set()
        self._thread.join()


class FlowRun:
    """One streaming pass: decoded batches through a FlowTable.

    Iterating yields ``(packets, flow_ids, ended)`` per batch, where ``ended``
    holds the flows that finished during it (by its packets, or by the
    source's wall clock); the flows still open at the end come last, with an
    empty packet batch, unless ``flush=False`` leaves them in ``table`` for the
    next part of the capture. ``table`` starts the run from a table carried
    over from an earlier part; ``summary`` counts as it goes; ``bpf`` keeps only
    the frames a tcpdump filter keeps.

    Nothing read is lost: after ``stop()`` (Ctrl-C) the open flows end as
    ``interrupted``; when the capture turns out broken mid-way (a
    ``CaptureError`` after the source opened), they end as ``error``, are
    yielded, and then the error is raised.
    """

    def __init__(self, source: Source, options: FlowOptions, progress: Progress | None = None,
                 *, batch_bytes: int | None = None, table: FlowTable | None = None,
                 flush: bool = True, bpf: BpfFilter | None = None) -> None:
        self.source = source
        self.bpf = bpf
        self.progress = progress
        self.batch_bytes = batch_bytes
        self.table = table if table is not None else FlowTable(options)
        self.flush = flush
        self.summary = RunSummary()
        self._stop: str | None = None
        self._drain = False

    def __iter__(self) -> Iterator[tuple[PacketBatch, np.ndarray, FlowRecords]]:
        src = open_source(self.source, batch_bytes=self.batch_bytes)
        error: CaptureError | None = None
        # A source without a wall clock (files) is read and decoded a batch ahead in a
        # second thread while this one walks the flow table (compiled without the GIL):
        # 1.35x on two cores (benchmarks/RESULTS.md), for the memory of one more batch.
        # A live source is read here, so that its clock and drop counts are the ones of
        # the batch just walked; so is any source under an open-flow cap, which asks for
        # bounded memory before speed (a SYN flood's 300 MB bound, tests).
        alone = src.now_ns() is not None or self.table.options.max_open_flows is not None
        batches = max(1, AHEAD_BYTES // (self.batch_bytes or AHEAD_BYTES))
        ahead = None if alone else ReadAhead(src, self.table.options, self.bpf, batches)
        try:
            for batch in ahead if ahead is not None else self._batches(src):
                ended = self._walk(batch)
                flow_ids = self.table.flow_ids
                now = src.now_ns()
                if now is not None:  # live: idle flows end while no packets come
                    ended = FlowRecords.concat([ended, self.table.expire(now)])
                self._count(batch, ended, src)
                yield batch.packets, flow_ids, ended
                if self._stop is not None and not self._drain:
                    break
        except CaptureError as err:  # broken mid-capture: keep what came before, then raise
            error = err
        finally:
            if ahead is not None:
                ahead.close()
            src.close()
        reason = "error" if error is not None else self._stop or "eof"
        yield PacketBatch.empty(0), np.zeros(0, np.int64), self._finish(reason)
        if error is not None:
            raise error

    def _batches(self, src: FrameSource) -> Iterator[Batch]:
        for frames in src:
            yield Batch(*made_ready(frames, self.bpf, self.table.options), src.bytes_read,
                        src.records)

    def _walk(self, batch: Batch) -> FlowRecords:
        """The batch through the table; tunnels: the packets inside make flows too."""
        if batch.ready is not None:
            return self.table.update_prepared(batch.ready, batch.packets)
        return self.table.update(batch.packets, batch.frames)

    @property
    def stopped(self) -> str | None:
        """The reason given to ``stop()``, or None."""
        return self._stop

    def stop(self, reason: str = "interrupted", *, drain: bool = False) -> None:
        """End the run after the current batch; open flows end with ``reason``.

        ``drain``: read on until the source ends instead, for a live source that was
        told to stop as well and still hands over the frames the kernel holds.
        Safe to call from a signal handler: it only sets flags.
        """
        self._stop = reason
        self._drain = drain

    def _finish(self, reason: str) -> FlowRecords:
        """The flows still open, ended with ``reason``, unless the table is carried on."""
        rest = self.table.flush(reason) if self.flush else FlowRecords.empty()
        self.summary.flows += len(rest)
        self.summary.evicted = self.table.evicted
        return rest

    def _count(self, batch: Batch, ended: FlowRecords, src: FrameSource) -> None:
        self.summary.add(batch.packets)
        self.summary.flows += len(ended)
        self.summary.dropped = src.dropped
        if self.progress is not None:
            self.progress.update(batch.bytes_read, src.size, batch.records)

    def finished(self) -> Iterator[FlowRecords]:
        """Only the finished flows of each batch, as the printers take them."""
        for _, _, ended in self:
            yield ended


def layered_rows(packets: PacketBatch, table: FlowTable
                 ) -> tuple[PacketBatch, np.ndarray, np.ndarray]:
    """Every tunnel level of the batch ``table`` last took, as rows: each frame's own row
    (from ``packets``, its outermost headers) and after it the packets inside its tunnels
    (``table.rows``). Returns (rows, flow id of each, flow id of each row's carrier): an
    IP-in-IP or GRE frame's own row is in no flow (-1), the packet inside it is."""
    rows, ids = table.rows, table.row_flow_ids
    first = np.flatnonzero(np.r_[True, rows.record[1:] != rows.record[:-1]]) if len(rows) \
        else np.zeros(0, np.int64)
    own = np.where(rows.depth[first] == 0, ids[first], -1)
    # After each frame's own row, the rest of its rows in order: the packets inside its
    # tunnels, an 802.11 A-MSDU's packets after the first (the frame's own row).
    shown = np.ones(len(rows), np.bool_)
    shown[first[rows.depth[first] == 0]] = False
    rest = np.flatnonzero(shown)
    order = np.lexsort((np.concatenate([np.full(len(packets), -1), rest]),
                        np.concatenate([packets.record, rows.record[rest]])))
    out = PacketBatch.concat([packets, rows.take(rest)]).take(order)
    flow_ids = np.concatenate([own, ids[rest]])[order]
    carrier_ids = np.full(len(out), -1, np.int64)
    inner = np.flatnonzero(out.carrier_depth >= 0)
    at = carriers(out, inner)
    carrier_ids[inner] = np.where(at >= 0, flow_ids[at], -1)
    return out, flow_ids, carrier_ids
