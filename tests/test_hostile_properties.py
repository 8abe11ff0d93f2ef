"""Hostile captures: every input ends in flows plus status counts, or one located error.

The contract and its checks are in tests/fuzz/fuzz_contract.py (shared with the
atheris fuzzers). Here hypothesis builds the inputs issue 5 names: record and
block lengths that are zero, huge or run past the end of the file, captured
lengths above the snaplen or the wire length, unknown link types, IPv4 header
lengths below 5 words, IPv6 extension chains that never end, TCP data offsets
below 5 or beyond the packet, overlapping and endless fragments, timestamps
going backwards or beyond the year 2262. Expected statuses are from the
decoder's rules (tracker/decode/__init__.py), written by hand per frame.
"""

from __future__ import annotations

import gzip
import struct
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE / "fuzz"), str(HERE / "sources")]

import fuzz_contract as fc
import fuzz_decode
import fuzz_flows
import pcap_builders as pb

from tracker.packets import Status

MACS = bytes.fromhex("00005e005301" "00005e005302")  # RFC 7042 documentation MACs
SRC4, DST4 = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2])  # RFC 5737
SRC6 = bytes.fromhex("20010db8") + bytes(11) + b"\x01"  # RFC 3849
DST6 = bytes.fromhex("20010db8") + bytes(11) + b"\x02"
SNAPLEN = 96
PROPERTY = settings(max_examples=60, deadline=2000,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def ipv4(payload: bytes, proto: int = 6, *, ihl: int = 5, total: int | None = None,
         frag: int = 0x4000, ident: int = 1) -> bytes:
    """IPv4 header (RFC 791) with raw field values, then ``payload``."""
    length = 4 * ihl + len(payload) if total is None else total
    hdr = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, length, ident, frag, 64, proto, 0,
                      SRC4, DST4)
    return hdr + bytes(max(0, 4 * ihl - 20)) + payload


def ipv6(payload: bytes, nxt: int) -> bytes:
    """IPv6 header (RFC 8200 section 3), then ``payload`` (extension headers included)."""
    return struct.pack(">IHBB", 0x60000000, len(payload), nxt, 64) + SRC6 + DST6 + payload


def tcp(doff: int = 5, flags: int = 0x02, extra: bytes = b"") -> bytes:
    """TCP header (RFC 9293 section 3.1) 50000 -> 80, data offset ``doff``."""
    return struct.pack(">HHIIBBHHH", 50000, 80, 100, 0, doff << 4, flags, 64240, 0, 0) + extra


def eth(ip: bytes, v6: bool = False) -> bytes:
    return MACS + (b"\x86\xdd" if v6 else b"\x08\x00") + ip


HOP_BY_HOP = b"\x00\x00" + bytes(6)  # RFC 8200 4.3: next header 0 (hop-by-hop again), 8 bytes
# name -> (frame, its status), by hand from the rules in tracker/decode/__init__.py.
HOSTILE_FRAMES: dict[str, tuple[bytes, Status]] = {
    "ipv4 ihl 0": (eth(ipv4(tcp(), ihl=0)), Status.MALFORMED),
    "ipv4 ihl 4": (eth(ipv4(tcp(), ihl=4)), Status.MALFORMED),
    "ipv4 total length 0 (TSO: from the frame)": (eth(ipv4(tcp(), total=0)), Status.OK),
    "ipv4 total length 19": (eth(ipv4(tcp(), total=19)), Status.MALFORMED),
    "ipv6 endless hop-by-hop chain": (eth(ipv6(HOP_BY_HOP * 40, 0), True), Status.MALFORMED),
    "ipv6 chain past its payload": (eth(ipv6(HOP_BY_HOP[:2], 0), True), Status.MALFORMED),
    "tcp data offset 0": (eth(ipv4(tcp(doff=0))), Status.MALFORMED),
    "tcp data offset 4": (eth(ipv4(tcp(doff=4))), Status.MALFORMED),
    "tcp data offset 15 past the packet": (eth(ipv4(tcp(doff=15))), Status.MALFORMED),
    "later fragment, MF set": (eth(ipv4(bytes(64), frag=0x2000 | 8)), Status.FRAGMENT),
    "fragment at the last offset": (eth(ipv4(bytes(8), frag=0x1FFF)), Status.FRAGMENT),
    "tcp syn": (eth(ipv4(tcp())), Status.OK),
}


@pytest.fixture(scope="module", autouse=True)
def warm() -> None:
    """Load numba's compiled flow table once, so hypothesis' deadlines time the inputs."""
    fc.check_capture(pb.pcap([(1, 0, HOSTILE_FRAMES["tcp syn"][0])]))


def statuses(out: fc.Outcome) -> dict[str, int]:
    return {name: n for name, n in out.status.items() if n}


@pytest.mark.parametrize("name", list(HOSTILE_FRAMES))
def test_hostile_frame_is_counted(name: str) -> None:
    frame, status = HOSTILE_FRAMES[name]
    out = fc.check_capture(pb.pcap([(1, 0, frame), (2, 0, HOSTILE_FRAMES["tcp syn"][0])]))
    assert out.error is None
    expected = {status.name: 1}
    expected["OK"] = expected.get("OK", 0) + 1
    assert statuses(out) == expected


def test_unknown_link_type_is_counted() -> None:
    frame = HOSTILE_FRAMES["tcp syn"][0]
    out = fc.check_capture(pb.pcap([(1, 0, frame)] * 3, linktype=0xBEEF))
    assert (out.error, statuses(out), out.flows) == (None, {"UNSUPPORTED_LINK": 3}, 0)


def test_overlapping_and_endless_fragments() -> None:
    """Two datagrams: one whose pieces overlap (complete), one that never ends (pending)."""
    data = tcp(extra=bytes(20))  # 40 bytes of TCP
    overlapping = [ipv4(data[:24], frag=0x2000, ident=7), ipv4(data[16:], frag=2, ident=7)]
    endless = [ipv4(data[:16], frag=0x2000, ident=9)]  # MF on every piece: never complete
    endless += [ipv4(bytes(16), frag=0x2000 | k, ident=9) for k in (2, 2, 4)]
    frames = [eth(p) for p in overlapping + endless]
    out = fc.check_capture(pb.pcap([(1, i, f) for i, f in enumerate(frames)]))
    assert out.error is None and statuses(out) == {"FRAGMENT": 6}
    assert out.flows == 1  # the overlapping datagram reassembles; the endless one never does


def test_record_length_huge_is_located() -> None:
    frame = HOSTILE_FRAMES["tcp syn"][0]
    head = pb.pcap([(1, 0, frame)])
    bad = head + struct.pack("<IIII", 2, 0, 0xFFFFFFFF, 60) + frame
    out = fc.check_capture(bad)
    assert out.error is not None and "record 1 at byte 94" in out.error


# --- properties -----------------------------------------------------------------

RECORD_KINDS = ("honest", "zero", "over_snaplen", "over_wire", "huge", "past_end")


@st.composite
def pcap_files(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """A classic pcap whose records lie about their lengths and times in the issue's ways."""
    frames = list(HOSTILE_FRAMES.values())
    magic = draw(st.sampled_from([pb.MAGIC_US, pb.MAGIC_NS, pb.MAGIC_MODIFIED]))
    big = draw(st.booleans())
    e = ">" if big else "<"
    hdr = 24 if magic == pb.MAGIC_MODIFIED else 16
    out = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, SNAPLEN,
                       draw(st.sampled_from([1, 1, 101, 0xBEEF, 147, 0xFFFF])))]
    kinds = draw(st.lists(st.sampled_from(RECORD_KINDS), max_size=12))
    for kind in kinds:
        frame = draw(st.sampled_from(frames))[0]
        frame = frame + bytes(200) if kind == "over_snaplen" else frame
        frame = b"" if kind == "zero" else frame
        incl = {"huge": 0xFFFFFFFF, "past_end": len(frame) + 1000}.get(kind, len(frame))
        wire = len(frame) // 2 if kind == "over_wire" else len(frame)
        ts = draw(st.integers(0, 2**32 - 1))  # any order: backwards too
        out.append(struct.pack(e + "IIII", ts, draw(st.integers(0, 2**32 - 1)), incl, wire))
        out.append(bytes(hdr - 16) + frame)
    return b"".join(out), kinds


@PROPERTY
@given(pcap_files())
def test_pcap_lengths_and_times(case: tuple[bytes, list[str]]) -> None:
    data, kinds = case
    out = fc.check_capture(data)
    honest = [k for k in kinds if k not in ("huge", "past_end")]
    if len(honest) == len(kinds):  # lengths are true: every record is read, none is an error
        assert out.error is None and out.frames == len(kinds)
    elif kinds[0] == "huge":  # the first record claims 4 GiB: an error at record 0
        assert out.error is not None and "record 0 at byte 24" in out.error
    else:  # every record before the first lying one is read; after it, bytes misparse
        first_lie = next(i for i, k in enumerate(kinds) if k in ("huge", "past_end"))
        assert out.frames >= first_lie


@st.composite
def pcapng_files(draw: st.DrawFn) -> tuple[bytes, int]:
    """A pcapng with extreme time units and offsets, times backwards, and odd blocks."""
    big = draw(st.booleans())
    tsresol = draw(st.sampled_from([None, 0, 3, 6, 9, 12, 27, 30, 0x80 | 0, 0x80 | 40, 0xFF]))
    tsoffset = draw(st.sampled_from([None, 0, -(2**62), 2**62, 2**63 - 1, 10**10]))
    blocks = [pb.shb(big=big),
              pb.idb(draw(st.sampled_from([1, 101, 0xBEEF])), snaplen=SNAPLEN, tsresol=tsresol,
                     tsoffset=tsoffset, big=big)]
    n = draw(st.integers(0, 8))
    for _ in range(n):
        frame = draw(st.sampled_from(list(HOSTILE_FRAMES.values())))[0]
        ticks = draw(st.integers(0, 2**64 - 1))
        kind = draw(st.sampled_from(["epb", "spb", "pb", "unknown"]))
        if kind == "epb":
            blocks.append(pb.epb(0, ticks, frame, big=big))
        elif kind == "spb":
            blocks.append(pb.spb(frame, big=big))
        elif kind == "pb":
            blocks.append(pb.pb(0, ticks, frame, big=big))
        else:  # a block type no reader knows: skipped (pcapng section 3.1)
            blocks.append(pb.block(0x0BAD, frame, big=big))
    return b"".join(blocks), n


@PROPERTY
@given(pcapng_files(), st.data())
def test_pcapng_times_and_blocks(case: tuple[bytes, int], data: st.DataObject) -> None:
    image, _ = case
    out = fc.check_capture(image)
    assert out.error is None  # well-formed blocks: times never make it an error
    # then any cut or one overwritten 4-byte word (a block length, an interface id)
    at = data.draw(st.integers(0, len(image)))
    word = data.draw(st.sampled_from([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 12, 13, len(image) + 4]))
    fc.check_capture(image[:at])
    fc.check_capture(image[:at] + struct.pack("<I", word) + image[at + 4:])


@PROPERTY
@given(pcap_files(), st.floats(0, 1), st.booleans())
def test_gzip_cut_or_corrupted(case: tuple[bytes, list[str]], where: float, flip: bool) -> None:
    packed = gzip.compress(case[0], mtime=0)
    at = int(where * len(packed))
    broken = packed[:at] + bytes([packed[at] ^ 0x55]) + packed[at + 1:] if flip and \
        at < len(packed) else packed[:at]
    out = fc.check_reader(broken, batch_bytes=64)
    if at < 2:  # not even the gzip magic: not a capture
        assert out.error is not None


@PROPERTY
@given(st.binary(max_size=400))
def test_flow_table_programs(data: bytes) -> None:
    fuzz_flows.one_input(data)


@PROPERTY
@given(st.binary(max_size=400))
def test_decoder_frames(data: bytes) -> None:
    fuzz_decode.one_input(data)


# --- work that must stay linear in the input ---------------------------------------


def read_seconds(image: bytes) -> float:
    """Seconds to read a capture image, best of two (a shared machine is noisy)."""
    times = []
    for _ in range(2):
        start = time.perf_counter()
        out = fc.check_reader(image)
        times.append(time.perf_counter() - start)
        assert out.error is None
    return min(times)


def interfaces(n: int, *, distinct_times: bool) -> bytes:
    """A pcapng of ``n`` interface blocks (distinct if_tsoffset if asked), one packet each."""
    idbs = b"".join(pb.idb(1, tsoffset=i if distinct_times else None) for i in range(n))
    return pb.shb() + idbs + b"".join(pb.epb(i, i, bytes(60)) for i in range(n))


def test_many_interface_blocks_cost_linear_time() -> None:
    """32 times the interfaces: about 32 times the time (it was quadratic: np.append per
    interface block, 11 s for 160 000 of them, 4 s for these 80 000)."""
    small = read_seconds(interfaces(2_500, distinct_times=False))
    big = read_seconds(interfaces(80_000, distinct_times=False))
    assert big < 60 * max(small, 0.01), (small, big)


def test_many_time_resolutions_cost_linear_time() -> None:
    """20 000 interfaces, each with its own if_tsoffset, packets interleaved: it took one
    pass over all interfaces per distinct resolution (minutes), now one sort."""
    assert read_seconds(interfaces(20_000, distinct_times=True)) < 10
