"""In-memory sources: a capture image in bytes, and bare frames."""

from __future__ import annotations

import pytest
from pcap_builders import epb, frame, idb, pcap, shb
from readhelp import flat

from tracker.errors import NotACaptureError
from tracker.sources.memory import frame_batches, open_bytes


def test_open_bytes_reads_pcapng_image() -> None:
    data = shb() + idb(101, tsresol=9) + epb(0, 5, frame(0, 30)) + epb(0, 6, frame(1, 40))
    with open_bytes(data, name="mem") as cap:
        frames = flat(list(cap))
    assert cap.name == "mem" and cap.format == "pcapng"
    assert frames == [(frame(0, 30), 5, 30, 101, 0), (frame(1, 40), 6, 40, 101, 1)]


def test_open_bytes_checks_content() -> None:
    with pytest.raises(NotACaptureError, match="buf: not a capture"):
        open_bytes(b"\x00" * 30, name="buf")
    with open_bytes(pcap([(1, 2, frame(0))])) as cap:
        assert cap.name == "<memory>" and sum(len(b) for b in cap) == 1


def test_frame_batches_numbers_records() -> None:
    frames = [frame(i, 20 + i) for i in range(5)]
    batches = list(frame_batches(frames, linktype=101, ts_ns=[10, 20, 30, 40, 50], batch_frames=2))
    assert [len(b) for b in batches] == [2, 2, 1]
    assert flat(batches) == [(frame(i, 20 + i), 10 * (i + 1), 20 + i, 101, i) for i in range(5)]
