"""The public functions behind ``tracker.read_packets``, ``tracker.read_flows`` and friends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any, BinaryIO, Protocol

import numpy as np
import pandas as pd

from tracker.decode import decode
from tracker.errors import OptionError
from tracker.flows import FlowOptions, FlowRecords, FlowTable
from tracker.frames import FrameBatch
from tracker.packets import PacketBatch, Status
from tracker.report.flow_columns import flows_dataframe
from tracker.report.packets import packets_dataframe
from tracker.sources.files import open_capture

Source = str | os.PathLike[str] | BinaryIO


@dataclass
class RunSummary:
    """What one pass over a capture saw: frames per status, flows, evictions.

    ``status`` counts frames by ``Status`` name; MALFORMED, TRUNCATED and the
    others are reported, never fatal.
    """

    frames: int = 0
    status: dict[str, int] = field(default_factory=lambda: {s.name: 0 for s in Status})
    flows: int = 0
    evicted: int = 0

    def add(self, pb: PacketBatch) -> None:
        self.frames += len(pb)
        counts = np.bincount(pb.status, minlength=len(Status))
        for s in Status:
            self.status[s.name] += int(counts[s])

    def line(self) -> str:
        """One line for stderr, like tcpdump's closing counts."""
        odd = ", ".join(f"{n} {name.lower()}" for name, n in self.status.items()
                        if n and name != "OK")
        evicted = f", {self.evicted} evicted by the open-flow cap" if self.evicted else ""
        return f"{self.frames} frames ({odd or 'all decoded'}), {self.flows} flows{evicted}"


def flow_options(options: FlowOptions | None = None, **kw: Any) -> FlowOptions:
    """A FlowOptions from keyword options; an unknown name is an OptionError."""
    if options is not None and kw:
        raise OptionError("give either options=FlowOptions(...) or keyword options, not both")
    if options is not None:
        return options
    known = {f.name for f in fields(FlowOptions) if not f.name.startswith("_")}
    unknown = sorted(set(kw) - known)
    if unknown:
        raise OptionError(f"unknown flow option {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return FlowOptions(**kw)


class _Progress(Protocol):
    def update(self, bytes_read: int, size: int | None, frames: int) -> None: ...


def iter_decoded(source: Source, progress: _Progress | None = None, *,
                 batch_bytes: int | None = None) -> Iterator[tuple[FrameBatch, PacketBatch]]:
    """Each batch of a capture with its decoded headers, streaming.

    ``progress.update(bytes_read, size, frames)`` is called after each batch;
    ``batch_bytes`` sets how much of the file one batch reads (the reader's default).
    """
    with (open_capture(source) if batch_bytes is None
          else open_capture(source, batch_bytes=batch_bytes)) as reader:
        for frames in reader:
            packets = decode(frames)
            if progress is not None:
                progress.update(reader.bytes_read, reader.size, reader.records)
            yield frames, packets


class FlowRun:
    """One streaming pass: decoded batches through a FlowTable.

    Iterating yields ``(packets, flow_ids, ended)`` per batch, where ``ended``
    holds the flows that finished during it; the flows still open at the end
    of the capture come last, with an empty packet batch. ``summary`` counts
    as it goes.
    """

    def __init__(self, source: Source, options: FlowOptions,
                 progress: _Progress | None = None, *, batch_bytes: int | None = None) -> None:
        self.source = source
        self.progress = progress
        self.batch_bytes = batch_bytes
        self.table = FlowTable(options)
        self.summary = RunSummary()

    def __iter__(self) -> Iterator[tuple[PacketBatch, np.ndarray, FlowRecords]]:
        for frames, packets in iter_decoded(self.source, self.progress,
                                            batch_bytes=self.batch_bytes):
            ended = self.table.update(packets, frames)
            self.summary.add(packets)
            self.summary.flows += len(ended)
            yield packets, self.table.flow_ids, ended
        rest = self.table.flush("eof")
        self.summary.flows += len(rest)
        self.summary.evicted = self.table.evicted
        yield PacketBatch.empty(0), np.zeros(0, np.int64), rest


def read_flows(source: Source, *, options: FlowOptions | None = None, **kw: Any) -> pd.DataFrame:
    """Read a capture and return one row per flow (one connection on a socket pair).

    ``source`` is a pcap or pcapng file (gzip too), ``"-"`` for standard input,
    or a binary file object. Options are ``FlowOptions`` fields as keywords
    (``tcp_inactivity=300``, ``vlan_in_key=True``, ``max_open_flows=100_000``,
    ...) or one ``options=FlowOptions(...)``. The columns are documented in
    ``tracker.report.flow_columns.FLOW_COLUMNS``; ``df.attrs["summary"]`` holds
    the run's ``RunSummary``. No flows gives an empty frame with the same columns.

    Examples
    --------
    >>> df = read_flows("captures/tcp-handshake-fin.pcap")
    >>> df[["orig_addr", "orig_port", "resp_addr", "resp_port", "conn_state", "history"]]
          orig_addr  orig_port      resp_addr  resp_port conn_state   history
    0  192.0.2.10      49152  198.51.100.20         80         SF  ShADadFf
    """
    run = FlowRun(source, flow_options(options, **kw))
    parts = [ended for _, _, ended in run]
    df = flows_dataframe(FlowRecords.concat(parts))
    df.attrs["summary"] = run.summary
    return df


def read_packets(source: Source, *, flow_ids: bool = True, options: FlowOptions | None = None,
                 **kw: Any) -> pd.DataFrame:
    """Read a capture file and return one row per frame with its decoded headers.

    ``source`` is a path to a pcap or pcapng file (gzip-compressed or not; the
    format is detected from the content), ``"-"`` for standard input, or a
    binary file object. The columns are documented in
    ``tracker.report.columns.PACKET_COLUMNS``. With ``flow_ids`` (the default)
    the frames also go through the flow table, and ``flow_id`` names each
    packet's row in ``read_flows`` with the same options (<NA>: in no flow).
    ``df.attrs["summary"]`` counts the frames per status.

    Examples
    --------
    >>> df = read_packets("captures/tcp-handshake-fin.pcap")
    >>> df[["frame", "src_addr", "src_port", "dst_port", "tcp_flags", "flow_id"]].head(3)
       frame    src_addr  src_port  dst_port  tcp_flags  flow_id
    0      1  192.0.2.10     49152        80          2        0
    1      2  198.51.100.20        80     49152         18        0
    2      3  192.0.2.10     49152        80         16        0
    """
    if not flow_ids:
        summary = RunSummary()
        batches = []
        for _, packets in iter_decoded(source):
            summary.add(packets)
            batches.append(packets)
        df = packets_dataframe(PacketBatch.concat(batches))
        df.attrs["summary"] = summary
        return df
    run = FlowRun(source, flow_options(options, **kw))
    batches, ids, late = [], [], []
    for packets, fids, _ in run:
        batches.append(packets)
        ids.append(fids.copy())
        late.append(run.table.earlier_flow_ids)
    pb = PacketBatch.concat(batches)
    fid = np.concatenate(ids)
    for records, flows in late:  # fragments whose datagram completed in a later batch
        fid[np.searchsorted(pb.record, records)] = flows
    df = packets_dataframe(pb, fid)
    df.attrs["summary"] = run.summary
    return df
