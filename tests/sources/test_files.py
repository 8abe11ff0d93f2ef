"""Classic pcap, gzip, stdin, chunking and error handling of open_capture.

Every capture here is built byte by byte (pcap_builders); expected values are
worked out by hand from the records written.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from pcap_builders import MAGIC_MODIFIED, MAGIC_NS, MAGIC_US, frame, pcap
from readhelp import flat, read_all, write

from tracker.errors import (
    CaptureError,
    CorruptCaptureError,
    NotACaptureError,
    OptionError,
    TruncatedCaptureWarning,
)
from tracker.sources.files import open_capture

REPO = Path(__file__).resolve().parents[2]
T0 = 1_600_000_000  # 2020-09-13T12:26:40Z
RECORDS = [
    (T0, 123456, frame(0, 60), 60),
    (T0 + 1, 999999, frame(1, 100), 1514),
    (T0 + 2, 0, frame(2, 14), 14),
]


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("magic", [MAGIC_US, MAGIC_NS, MAGIC_MODIFIED])
def test_pcap_magics_and_byte_orders(tmp_path: Path, walk_mode: str, magic: int, big: bool) -> None:
    path = write(tmp_path, "x.cap", pcap(RECORDS, magic=magic, big=big, linktype=113))
    cap, batches = read_all(path)
    unit = 1 if magic == MAGIC_NS else 1000
    assert cap.format == "pcap" and not cap.compressed and cap.nanosecond == (magic == MAGIC_NS)
    assert flat(batches) == [
        (frame(0, 60), T0 * 10**9 + 123456 * unit, 60, 113, 0),
        (frame(1, 100), (T0 + 1) * 10**9 + 999999 * unit, 1514, 113, 1),
        (frame(2, 14), (T0 + 2) * 10**9, 14, 113, 2),
    ]
    assert cap.records == 3 and cap.linktypes == {113}
    assert cap.size == cap.bytes_read == path.stat().st_size
    assert cap.name == str(path)


def test_pcap_linktype_keeps_low_16_bits(tmp_path: Path) -> None:
    # bits 28-31 FCS length 4, bit 27 "F" set (draft-ietf-opsawg-pcap 4): link type 1
    path = write(tmp_path, "fcs.pcap", pcap(RECORDS[:1], linktype=(4 << 28) | (1 << 27) | 1))
    _, batches = read_all(path)
    assert batches[0].linktype == 1


@pytest.mark.parametrize("snaplen", [0, 16, 0xFFFFFFFF])
def test_snaplen_does_not_bound_caplen(tmp_path: Path, walk_mode: str, snaplen: int) -> None:
    path = write(tmp_path, "s.pcap", pcap(RECORDS, snaplen=snaplen))
    _, batches = read_all(path)
    assert [len(f[0]) for f in flat(batches)] == [60, 100, 14]


@pytest.mark.parametrize(("version", "swapped"), [((2, 2), True), ((2, 3), True), ((2, 3), False)])
def test_old_versions_with_swapped_lengths(
    tmp_path: Path, version: tuple[int, int], swapped: bool
) -> None:
    # libpcap sf-pcap.c: before 2.3 incl_len/orig_len are swapped; in 2.3 only when incl > orig
    recs = [(T0, 0, frame(0, 40), 1500)]
    path = write(tmp_path, "old.pcap", pcap(recs, version=version, swapped_lengths=swapped))
    _, batches = read_all(path)
    assert flat(batches) == [(frame(0, 40), T0 * 10**9, 1500, 1, 0)]


def test_empty_pcap_has_no_batches(tmp_path: Path) -> None:
    cap, batches = read_all(write(tmp_path, "e.pcap", pcap([], linktype=101)))
    assert batches == [] and cap.records == 0 and cap.linktypes == {101}


def _many(n: int) -> list[tuple[int, int, bytes, int]]:
    return [(T0 + i, i, frame(i, 14 + (i * 37) % 300), 1000 + i) for i in range(n)]


@pytest.mark.parametrize("batch_bytes", [1, 7, 100, 1000, 1 << 20])
def test_records_straddle_chunks(tmp_path: Path, walk_mode: str, batch_bytes: int) -> None:
    recs = _many(200)
    path = write(tmp_path, "many.pcap", pcap(recs))
    cap, batches = read_all(path, batch_bytes=batch_bytes)
    # every batch is still intact after the reader moved on (no buffer reuse)
    assert flat(batches) == [
        (r[2], r[0] * 10**9 + r[1] * 1000, r[3], 1, i) for i, r in enumerate(recs)
    ]
    assert cap.bytes_read == path.stat().st_size
    if batch_bytes == 1000:  # memory per chunk stays near batch_bytes
        assert len(batches) > 10
        assert max(b.data.nbytes for b in batches) <= 1000 + 316


def test_record_larger_than_chunk(tmp_path: Path) -> None:
    recs = [(T0, 0, frame(0, 10_000), 10_000), (T0, 1, frame(1, 20), 20)]
    _, batches = read_all(write(tmp_path, "big.pcap", pcap(recs)), batch_bytes=64)
    assert [f[0] for f in flat(batches)] == [frame(0, 10_000), frame(1, 20)]


def test_batch_data_is_read_only(tmp_path: Path) -> None:
    _, batches = read_all(write(tmp_path, "ro.pcap", pcap(RECORDS)))
    with pytest.raises(ValueError, match="read-only"):
        batches[0].data[0] = 1


@pytest.mark.parametrize("cut", [24 + 5, 24 + 16 + 60 + 16 + 30])
def test_truncated_last_record_warns_and_keeps_earlier(
    tmp_path: Path, walk_mode: str, cut: int
) -> None:
    data = pcap(RECORDS)[:cut]  # inside record 0's header / inside record 1's body
    path = write(tmp_path, "cut.pcap", data)
    with pytest.warns(TruncatedCaptureWarning) as rec, open_capture(path) as cap:
        frames = flat(list(cap))
    kept = 0 if cut < 40 else 1
    assert [f[0] for f in frames] == [frame(0, 60)][:kept]
    msg = str(rec[0].message)
    offset = 24 if kept == 0 else 24 + 16 + 60
    assert str(path) in msg and f"record {kept} at byte {offset}" in msg
    assert len(rec) == 1


def test_caplen_over_limit_is_corrupt(tmp_path: Path) -> None:
    data = pcap(RECORDS[:1]) + b"\x00" * 8 + (257 << 20).to_bytes(4, "little") + b"\x00" * 4
    path = write(tmp_path, "bad.pcap", data)
    with pytest.raises(CorruptCaptureError) as err, open_capture(path) as cap:
        frames = []
        for b in cap:
            frames += flat([b])
    assert len(frames) == 1  # the frame before the fault was yielded first
    msg = str(err.value)
    assert str(path) in msg and "record 1 at byte 100" in msg and str(257 << 20) in msg


def test_record_claiming_more_than_the_file_is_corrupt(tmp_path: Path) -> None:
    # caplen 1 MB > libpcap's 262144 and > snaplen, with 10 bytes left: not a mere cut
    data = pcap([]) + (T0).to_bytes(4, "little") + bytes(4) + (1 << 20).to_bytes(4, "little") * 2
    path = write(tmp_path, "claim.pcap", data + bytes(10))
    with pytest.raises(CorruptCaptureError, match=r"record 0 at byte 24: captured length 1048576"):
        read_all(path)


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        (b"", "0 bytes"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "d4 c3 b2 a1 02 00"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "47 45 54 20 2f 20"),
        (b"\x0a\x0d\x0d\x0a" + bytes(40), "0a 0d 0d 0a"),
    ],
)
def test_not_a_capture(tmp_path: Path, data: bytes, shown: str) -> None:
    path = write(tmp_path, "x.pcap", data)
    with pytest.raises(NotACaptureError) as err:
        open_capture(path)
    msg = str(err.value)
    assert str(path) in msg and shown in msg
    assert "pcap" in msg and ("expected" in msg or "needs 24" in msg or "needs 28" in msg)


def test_gzip_of_not_a_capture(tmp_path: Path) -> None:
    path = write(tmp_path, "t.gz", gzip.compress(b"hello world, not a capture"))
    with pytest.raises(NotACaptureError, match=r"t\.gz.*68 65 6c 6c 6f"):
        open_capture(path)


@pytest.mark.parametrize("batch_bytes", [50, 8 << 20])
def test_gzip_pcap(tmp_path: Path, walk_mode: str, batch_bytes: int) -> None:
    raw = pcap(_many(100), magic=MAGIC_NS, big=True)
    path = write(tmp_path, "g.pcap", gzip.compress(raw))  # named .pcap: told by content
    cap, batches = read_all(path, batch_bytes=batch_bytes)
    assert cap.compressed and cap.format == "pcap" and cap.nanosecond
    assert flat(batches) == flat(read_all(io.BytesIO(raw))[1])
    assert cap.bytes_read == cap.size == path.stat().st_size


def test_cut_gzip_keeps_frames_and_warns(tmp_path: Path) -> None:
    packed = gzip.compress(pcap(_many(2000)))
    path = write(tmp_path, "cut.pcap.gz", packed[: len(packed) * 2 // 3])
    with pytest.warns(TruncatedCaptureWarning, match="gzip stream ends"), open_capture(path) as cap:
        n = sum(len(b) for b in cap)
    assert 0 < n < 2000


def test_corrupt_gzip_raises_capture_error_after_frames(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(pcap(_many(300))))
    packed[-8] ^= 0xFF  # CRC32 of the member (RFC 1952 2.3.1)
    path = write(tmp_path, "crc.pcap.gz", bytes(packed))
    seen = 0
    with pytest.raises(CaptureError) as err, open_capture(path) as cap:
        for b in cap:
            seen += len(b)
    assert seen == 300 and str(path) in str(err.value)


def test_file_object_and_stdin_name(tmp_path: Path) -> None:
    raw = pcap(RECORDS)
    cap, batches = read_all(io.BytesIO(raw))
    assert cap.name == "<stream>" and cap.size is None and len(flat(batches)) == 3
    with open(write(tmp_path, "f.pcap", raw), "rb") as f:
        cap, batches = read_all(f)
        assert not f.closed  # the caller's file stays open
    assert cap.name.endswith("f.pcap") and cap.size == len(raw)


@pytest.mark.parametrize("compress", [False, True])
def test_stdin_pipe(compress: bool) -> None:
    raw = pcap(_many(500))
    script = (
        "from tracker.sources.files import open_capture\n"
        "with open_capture('-', batch_bytes=4096) as c:\n"
        "    n = sum(len(b) for b in c)\n"
        "print(c.name, c.format, c.compressed, c.size, n)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=gzip.compress(raw) if compress else raw,
        capture_output=True,
        check=True,
        cwd=REPO,
        timeout=120,
    )
    assert out.stdout.decode().split() == ["<stdin>", "pcap", str(compress), "None", "500"]


def test_bad_options_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="batch_bytes=0"):
        open_capture(tmp_path / "x", batch_bytes=0)
    with pytest.raises(CaptureError, match="nope.pcap: cannot open"):
        open_capture(tmp_path / "nope.pcap")


def test_progress_counters_while_reading(tmp_path: Path) -> None:
    path = write(tmp_path, "p.pcap", pcap(_many(1000)))
    seen = []
    with warnings.catch_warnings(), open_capture(path, batch_bytes=4096) as cap:
        warnings.simplefilter("error")
        for b in cap:
            seen.append((cap.records, cap.bytes_read, b.first_record, len(b)))
    assert all(r == f + n for r, _, f, n in seen)
    assert np.all(np.diff([s[1] for s in seen]) >= 0) and seen[-1][1] == cap.size
