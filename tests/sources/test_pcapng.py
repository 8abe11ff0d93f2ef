"""pcapng: sections, interfaces, packet block kinds, time units, broken blocks.

Expected timestamps are worked out by hand from the ticks and if_tsresol /
if_tsoffset written (draft-ietf-opsawg-pcapng 4.2): ns = ticks * 10**9 / units
+ offset * 10**9, floored.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from pcap_builders import block, epb, frame, idb, pb, shb, spb
from readhelp import flat, read_all, write

from tracker.errors import CorruptCaptureError, TimestampWarning, TruncatedCaptureWarning
from tracker.frames import NAT_NS
from tracker.sources._pcapng import resolution, ticks_to_ns
from tracker.sources.files import open_capture

T0 = 1_600_000_000
S = 10**9


def two_sections() -> tuple[bytes, list[tuple[bytes, int, int, int, int]], list[int]]:
    """A little-endian section with 3 interfaces, then a big-endian one; expected frames."""
    le = [
        shb(),
        idb(1),  # if 0: Ethernet, default microseconds
        idb(101, tsresol=9, tsoffset=100),  # if 1: raw IP, ns, +100 s
        idb(1, snaplen=50, tsresol=0x80 | 20),  # if 2: Ethernet, 2**-20 s
        epb(0, T0 * 10**6 + 250_000, frame(0, 60)),
        block(4, b"\x01\x00\x04\x00\x0a\x00\x00\x01x.example\x00\x00\x00\x00\x00"),  # NRB
        block(5, bytes(16)),  # ISB
        block(0xBAD, b"\x00\x00\x7f\xfeabcd"),  # custom block
        block(0x0A, bytes(8)),  # decryption secrets block
        epb(2, T0 * 2**20 + 2**19, frame(1, 70), wire=1500),
        pb(1, T0 * 10**9 + 7, frame(2, 40)),
        spb(frame(3, 80), wire=200),  # snapped: 80 of 200 bytes captured
    ]
    be = [
        shb(big=True),
        idb(228, snaplen=30, tsresol=3, big=True),  # IPv4, milliseconds, snaplen 30
        epb(0, T0 * 1000 + 5, frame(4, 61), big=True),
        spb(frame(5, 64), big=True),  # captured = min(64, snaplen 30)
        pb(0, 2**33, frame(6, 20), big=True),
    ]
    expected = [
        (frame(0, 60), T0 * S + 250_000_000, 60, 1, 0),
        (frame(1, 70), T0 * S + 500_000_000, 1500, 1, 1),
        (frame(2, 40), (T0 + 100) * S + 7, 40, 101, 2),
        (frame(3, 80), NAT_NS, 200, 1, 3),
        (frame(4, 61), T0 * S + 5_000_000, 61, 228, 4),
        (frame(5, 64)[:30], NAT_NS, 64, 228, 5),
        (frame(6, 20), 2**33 * 10**6, 20, 228, 6),
    ]
    return b"".join(le + be), expected, [2, 1, 1, 3]


@pytest.mark.parametrize("batch_bytes", [1, 13, 100, 8 << 20])
def test_sections_interfaces_and_block_kinds(
    tmp_path: Path, walk_mode: str, batch_bytes: int
) -> None:
    data, expected, sizes = two_sections()
    path = write(tmp_path, "two.pcap", data)  # named .pcap, is pcapng
    cap, batches = read_all(path, batch_bytes=batch_bytes)
    assert cap.format == "pcapng" and cap.nanosecond is None
    assert flat(batches) == expected
    assert cap.linktypes == {1, 101, 228}
    if batch_bytes > len(data):  # one chunk: batches split only where the link type changes
        assert [len(b) for b in batches] == sizes
    assert all(len({b.linktype}) == 1 for b in batches)


def test_gzip_pcapng(tmp_path: Path, walk_mode: str) -> None:
    data, expected, _ = two_sections()
    cap, batches = read_all(write(tmp_path, "two.gz", gzip.compress(data)), batch_bytes=64)
    assert cap.compressed and cap.format == "pcapng"
    assert flat(batches) == expected


@pytest.mark.parametrize(
    ("tsresol", "ticks", "offset", "expected"),
    [
        (6, 1_700_000_000_123_456, 0, 1_700_000_000_123_456_000),
        (0, 1_700_000_000, 0, 1_700_000_000 * S),  # whole seconds
        (0, 10**10, 0, NAT_NS),  # year 2286: past int64 ns
        (6, 0xFFFFFFFF << 32, 0, NAT_NS),  # capinfos' year 151991 kind of garbage
        (12, 1_234_567_891_234_567, 0, 1_234_567_891_234),  # picoseconds, floored
        (12, 2**63 + 1000, 0, 9_223_372_036_854_776),  # floor((2**63 + 1000) / 1000)
        (28, 2**64 - 1, 0, 0),  # units of 1e-28 s: under 2 ns in all
        (0x80 | 30, 1, 0, 0),  # 2**-30 s = 0.93 ns, floored
        (0x80 | 30, 3 * 2**30 + 2**29, 0, 3_500_000_000),
        (0x80 | 40, 5 * 2**40 + 2**39, 0, 5_500_000_000),
        (0x80 | 10, 7 * 2**32 + 1024, 0, (7 * 2**22 + 1) * S),
        (0x80 | 1, 2**40, 0, NAT_NS),  # 2**39 s
        (9, 50 * S, -100, -50 * S),  # before 1970 is fine
        (9, 0, -(10**10), NAT_NS),  # before 1677
        (9, 9 * 10**18, 10**9, NAT_NS),  # offset pushes past 2262
        (9, 5, 10**11, NAT_NS),  # offset alone does not fit int64 ns
    ],
)
def test_tick_conversion_is_exact(tsresol: int, ticks: int, offset: int, expected: int) -> None:
    hi = np.array([ticks >> 32], np.int64)
    lo = np.array([ticks & 0xFFFFFFFF], np.int64)
    ns, bad = ticks_to_ns(hi, lo, resolution(tsresol, offset))
    assert int(ns[0]) == expected
    assert bad == (expected == NAT_NS)


def test_nat_timestamps_warn_once_with_count(tmp_path: Path, walk_mode: str) -> None:
    blocks = [
        shb(),
        idb(1),
        epb(0, 0xFFFF_FFFF_0000_0000, frame(0)),
        epb(0, T0 * 10**6, frame(1)),
        spb(frame(2)),
        epb(0, 0xFFFF_FFF0_0000_0000, frame(3)),
    ]
    path = write(tmp_path, "nat.pcapng", b"".join(blocks))
    with pytest.warns(TimestampWarning) as rec, open_capture(path) as cap:
        ts = [f[1] for f in flat(list(cap))]
    assert ts == [NAT_NS, T0 * S, NAT_NS, NAT_NS]
    assert len(rec) == 1  # the SPB has no time at all: not counted
    assert str(path) in str(rec[0].message) and "2 records" in str(rec[0].message)


def _base() -> list[bytes]:
    return [shb(), idb(1), epb(0, 1, frame(0)), epb(0, 2, frame(1))]


def _patch(blocks: list[bytes], i: int, at: int, value: int) -> bytes:
    b = bytearray(blocks[i])
    b[at : at + 4] = value.to_bytes(4, "little")
    blocks = list(blocks)
    blocks[i] = bytes(b)
    return b"".join(blocks)


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda b: _patch(b, 3, 4, 90), "block total length 90"),  # not a multiple of 4
        (lambda b: _patch(b, 3, 4, 8), "block total length 8"),  # < 12
        (lambda b: _patch(b, 3, len(b[3]) - 4, 96), "trailing block total length 96"),
        (
            lambda b: _patch(b, 3, 8, 1),
            "packet of interface 1, but the section describes interfaces 0 to 0",
        ),
        (lambda b: _patch(b, 3, 20, 61), "captured length 61"),  # past the block
    ],
)
def test_broken_block_is_corrupt(tmp_path: Path, walk_mode: str, make: object, what: str) -> None:
    blocks = _base()
    path = write(tmp_path, "bad.pcapng", make(blocks))  # type: ignore[operator]
    offset = sum(len(b) for b in blocks[:3])
    seen = []
    with pytest.raises(CorruptCaptureError) as err, open_capture(path) as cap:
        for b in cap:
            seen += flat([b])
    assert [f[0] for f in seen] == [frame(0)]
    assert f"{path}: block 3 at byte {offset}: {what}" in str(err.value)


def test_other_major_version_is_corrupt(tmp_path: Path) -> None:
    data = b"".join(_base()) + shb(major=2) + idb(1)
    with pytest.raises(CorruptCaptureError, match="major version 2"):
        read_all(write(tmp_path, "v2.pcapng", data))


@pytest.mark.parametrize("keep", [5, 40])
def test_truncated_last_block(tmp_path: Path, walk_mode: str, keep: int) -> None:
    blocks = _base()
    offset = sum(len(b) for b in blocks[:3])
    path = write(tmp_path, "cut.pcapng", b"".join(blocks)[: offset + keep])
    with pytest.warns(TruncatedCaptureWarning) as rec, open_capture(path) as cap:
        frames = flat(list(cap))
    assert [f[0] for f in frames] == [frame(0)]
    assert f"{path}: block 3 at byte {offset}: the file ends {keep} bytes" in str(rec[0].message)
