"""The public functions behind ``tracker.read_packets`` and friends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import pandas as pd

from tracker.decode import decode
from tracker.frames import FrameBatch
from tracker.packets import PacketBatch, Status
from tracker.report.packets import packets_dataframe
from tracker.sources.files import open_capture

Source = str | os.PathLike[str] | BinaryIO


def iter_decoded(source: Source) -> Iterator[tuple[FrameBatch, PacketBatch]]:
    """Each batch of a capture with its decoded headers, streaming."""
    with open_capture(source) as reader:
        for frames in reader:
            yield frames, decode(frames)


def status_counts(pb: PacketBatch) -> dict[str, int]:
    """How many rows have each Status, by name (all names present)."""
    counts = np.bincount(pb.status, minlength=len(Status))
    return {s.name: int(counts[s]) for s in Status}


def read_packets(source: Source) -> pd.DataFrame:
    """Read a capture file and return one row per frame with its decoded headers.

    ``source`` is a path to a pcap or pcapng file (gzip-compressed or not; the
    format is detected from the content), ``"-"`` for standard input, or a
    binary file object. The columns are documented in
    ``tracker.report.columns.PACKET_COLUMNS``; ``df.attrs["status_counts"]``
    counts the rows per status.

    Examples
    --------
    >>> df = read_packets("captures/tcp-handshake-fin.pcap")  # doctest: +SKIP
    >>> df[["frame", "src_addr", "src_port", "dst_addr", "dst_port", "tcp_flags"]].head(3)  # doctest: +SKIP
       frame     src_addr  src_port     dst_addr  dst_port  tcp_flags
    0      1  192.168.1.5      1099  192.168.1.7        80          2
    1      2  192.168.1.7        80  192.168.1.5      1099         18
    2      3  192.168.1.5      1099  192.168.1.7        80         16
    """
    pb = PacketBatch.concat([packets for _, packets in iter_decoded(source)])
    df = packets_dataframe(pb)
    df.attrs["status_counts"] = status_counts(pb)
    return df
