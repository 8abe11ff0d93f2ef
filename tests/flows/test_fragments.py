"""Fragment accounting (tracker/flows/fragments.py) on hand-built rows.

Expected numbers come from the rules in SEMANTICS.md section 1 and
ZEEK-FACTS.md section 4.2, worked out by hand in each test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.decode.decode_frames import ETH_IPV6, ipv6
from tracker.decode import decode
from tracker.errors import OptionError
from tracker.flows.fragments import Reassembled, Reassembler
from tracker.frames import FrameBatch
from tracker.packets import V4_MAPPED, PacketBatch, Status
from tracker.sources.files import open_capture

SEC = 10**9
A = int(V4_MAPPED) | 0xC0A80164  # 192.168.1.100
B = int(V4_MAPPED) | 0x0A000005  # 10.0.0.5


def row(record: int, *, ts: int | None = None, frag: tuple[int, int, bool] | None = None,
        ident: int = 7, proto: int = 17, src: int = A, dst: int = B, v6: bool = False,
        hdr: int | None = None, wire: int | None = None, caplen: int | None = None,
        sport: int = 5353, dport: int = 53) -> PacketBatch:
    """One decoded row. ``frag`` = (offset, data length, more fragments) makes
    it a FRAGMENT row; without it a whole UDP (or TCP) datagram of 100 data bytes."""
    pb = PacketBatch.empty(1)
    off, dlen, mf = frag if frag is not None else (0, 100, False)
    hdr = hdr if hdr is not None else (48 if v6 and frag else 40 if v6 else 20)
    pb.record[:] = record
    pb.ts_ns[:] = record * SEC if ts is None else ts
    pb.ip_version[:] = 6 if v6 else 4
    pb.proto[:] = proto
    pb.ip_hdr_len[:] = hdr
    pb.ip_len[:] = hdr + dlen
    pb.wire_len[:] = wire if wire is not None else 14 + hdr + dlen
    pb.caplen[:] = caplen if caplen is not None else pb.wire_len
    pb.src_hi[:], pb.src_lo[:] = (0x20010DB8 << 32, src) if v6 else (0, src)
    pb.dst_hi[:], pb.dst_lo[:] = (0x20010DB8 << 32, dst) if v6 else (0, dst)
    pb.ip_id[:] = ident
    pb.frag_offset[:] = off
    pb.more_fragments[:] = mf
    pb.l3_offset[:] = 14
    pb.ip_caplen[:] = pb.caplen - 14  # as the decoder: from the IP header to the frame's end
    if frag is not None:
        pb.status[:] = Status.FRAGMENT
    if off == 0:  # the transport header is in the first fragment only
        pb.l4_offset[:] = 14 + hdr
        pb.src_port[:], pb.dst_port[:] = sport, dport
        if proto == 6:
            pb.tcp_hdr_len[:] = 20
            pb.tcp_flags[:] = 0x002
            pb.seq[:] = 1000
        else:
            pb.udp_len[:] = 8 + dlen
    return pb


def batch(*rows: PacketBatch) -> PacketBatch:
    return PacketBatch.concat(list(rows))


def test_no_fragments_returns_the_same_arrays() -> None:
    pb = batch(row(0), row(1))
    out = Reassembler().push(pb)
    assert out.packets is pb
    assert out.row.tolist() == [0, 1]
    assert len(out.member_records) == 0 and len(out.member_of) == 0


def test_in_order_three_fragments_between_other_packets() -> None:
    pb = batch(row(0), row(1, frag=(0, 1480, True)), row(2), row(3, frag=(1480, 1480, True)),
               row(4, frag=(2960, 100, False)), row(5))
    r = Reassembler()
    out = r.push(pb)
    p = out.packets
    assert out.row.tolist() == [0, 2, 4, 5]
    dg = 2  # the datagram sits where its last fragment (record 4) was
    assert p.status[dg] == Status.OK
    assert p.ip_len[dg] == 20 + 3060
    assert p.wire_len[dg] == (14 + 20 + 1480) * 2 + 14 + 20 + 100
    assert p.ts_ns[dg] == 4 * SEC
    assert (p.src_port[dg], p.dst_port[dg]) == (5353, 53)
    assert p.payload_len[dg] == 3060 - 8
    assert p.frag_offset[dg] == 0 and not p.more_fragments[dg]
    assert out.member_records.tolist() == [1, 3, 4]
    assert out.member_of.tolist() == [dg, dg, dg]
    assert r.pending().datagrams == 0
    s = r.stats()
    assert (s.fragments, s.datagrams, s.fragments_completed) == (3, 1, 3)


def test_reversed_order_completes_on_the_first_fragment() -> None:
    # The last fragment arrives first and carries a 24-byte header (options):
    # Zeek builds the datagram on the first-ARRIVING fragment's header.
    pb = batch(row(10, frag=(16, 4, False), hdr=24), row(11, frag=(8, 8, True)),
               row(12, frag=(0, 8, True), proto=17))
    out = Reassembler().push(pb)
    assert out.row.tolist() == [12]
    p = out.packets
    assert p.ip_len[0] == 24 + 20
    assert p.ts_ns[0] == 12 * SEC
    assert p.src_port[0] == 5353
    assert sorted(out.member_records.tolist()) == [10, 11, 12]


def test_overlapping_fragments_count_coverage_not_sum() -> None:
    # [0,16) + [8,24) + [24,32) covers [0,32): data 32 bytes, not 16+16+8.
    pb = batch(row(0, frag=(0, 16, True)), row(1, frag=(8, 16, True)),
               row(2, frag=(24, 8, False)))
    out = Reassembler().push(pb)
    assert out.row.tolist() == [2]
    assert out.packets.ip_len[0] == 20 + 32


def test_hole_waits_until_filled() -> None:
    pb = batch(row(0, frag=(0, 16, True)), row(1, frag=(24, 8, False)), row(2))
    r = Reassembler()
    out = r.push(pb)
    assert out.row.tolist() == [2]  # nothing of the datagram yet
    assert r.pending().datagrams == 1 and r.pending().fragments == 2
    out = r.push(batch(row(3), row(4, frag=(16, 8, True))))
    assert out.row.tolist() == [3, 4]
    assert out.packets.ip_len[1] == 20 + 32
    assert out.member_records.tolist() == [0, 1, 4]  # records from the earlier push too
    assert out.member_of.tolist() == [1, 1, 1]
    assert r.pending().datagrams == 0


def test_last_fragment_alone_does_not_complete() -> None:
    pb = batch(row(0, frag=(1480, 20, False)))
    r = Reassembler()
    assert len(r.push(pb).packets) == 0
    assert r.pending().datagrams == 1


def test_duplicate_after_completion_starts_a_new_set() -> None:
    pb = batch(row(0, frag=(0, 8, True)), row(1, frag=(8, 8, False)), row(2, frag=(8, 8, False)))
    r = Reassembler()
    out = r.push(pb)
    assert out.row.tolist() == [1]
    assert r.pending().datagrams == 1 and r.pending().fragments == 1
    # A retransmitted whole datagram (same id) is a second packet.
    out = r.push(batch(row(3, frag=(0, 8, True))))
    assert out.row.tolist() == [3]
    assert out.member_records.tolist() == [2, 3]


def test_protocol_is_part_of_the_key() -> None:
    # Same src, dst and id; UDP's first fragment and a TCP last fragment do not pair.
    pb = batch(row(0, frag=(0, 8, True), proto=17), row(1, frag=(8, 8, False), proto=6))
    r = Reassembler()
    assert len(r.push(pb).packets) == 0
    assert r.pending().datagrams == 2


def test_interleaved_datagrams_of_two_ids() -> None:
    pb = batch(row(0, frag=(0, 8, True), ident=1), row(1, frag=(0, 8, True), ident=2),
               row(2, frag=(8, 4, False), ident=2), row(3, frag=(8, 6, False), ident=1))
    out = Reassembler().push(pb)
    assert out.row.tolist() == [2, 3]
    assert out.packets.ip_len.tolist() == [20 + 12, 20 + 14]
    assert out.packets.ip_id.tolist() == [2, 1]
    assert dict(zip(out.member_records.tolist(), out.member_of.tolist())) == {
        0: 1, 1: 0, 2: 0, 3: 1}


def test_ipv6_length_is_unfragmentable_part_plus_payload() -> None:
    # Each fragment: 40-byte header + 8-byte Fragment header + data; ip_len is
    # payload length + 40. Reassembled: 40 + 1448 + 100 (ZEEK-FACTS 4.2).
    pb = batch(row(0, frag=(0, 1448, True), v6=True), row(1, frag=(1448, 100, False), v6=True))
    out = Reassembler().push(pb)
    p = out.packets
    assert out.row.tolist() == [1]
    assert p.ip_len[0] == 40 + 1548
    assert p.ip_hdr_len[0] == 40
    assert p.payload_len[0] == 1548 - 8
    assert p.wire_len[0] == (14 + 48 + 1448) + (14 + 48 + 100)


def test_ipv6_destination_options_after_the_fragment_header_are_data() -> None:
    # The decoder's first-fragment row runs on to UDP past an 8-byte
    # Destination Options header (ip_hdr_len 56); the later fragment's stops at
    # the Fragment header (48), its protocol that header's Next Header (60, the
    # options), not UDP's 17: the two still pair (src, dst, id: Zeek's key).
    # Fragment data: 8 (options) + 8 (UDP) + 1432 = 1448, then 100: the datagram
    # is 40 + 8 + 8 + 1532 bytes, all covered.
    first = row(0, frag=(0, 1440, True), v6=True, hdr=56)  # ip_len 56 + 1440 = 40 + 8 + 1448
    later = row(1, frag=(1448, 100, False), v6=True, proto=60)
    for pushed in (batch(first, later), batch(later, first)):
        out = Reassembler().push(pushed)
        p = out.packets
        assert len(p) == 1
        assert p.ip_len[0] == 40 + 1548
        assert p.ip_hdr_len[0] == 48  # fixed header + Destination Options, no Fragment header
        assert p.payload_len[0] == 1548 - 8 - 8


def _ipv6_fragment(unfragmentable: bytes, first_next: int, next_header: int, offset: int,
                   more: bool, data: bytes) -> bytes:
    """An Ethernet frame of one IPv6 fragment, 2001:db8::1 -> 2001:db8::2, id 0x1234:
    the fixed header (Next Header ``first_next``), the ``unfragmentable`` extension
    headers, the Fragment header (Next Header ``next_header``), then ``data``."""
    frag = bytes([next_header, 0]) + (offset | more).to_bytes(2, "big") + (0x1234).to_bytes(4, "big")
    payload = unfragmentable + frag + data
    return ETH_IPV6 + ipv6(len(payload), first_next) + payload


@pytest.mark.parametrize("hop_by_hop", [False, True])
def test_ipv6_options_after_the_fragment_header_decoded_from_bytes(hop_by_hop: bool) -> None:
    """Frames as a host sends them (RFC 8200 section 4.5): a Destination Options header
    (8 bytes, Next Header UDP) after the Fragment header, in the fragmentable part, and,
    in the second case, a Hop-by-Hop header (8 bytes) before it. UDP 1000 -> 2000 with
    200 data bytes; the fragmentable part (8 + 8 + 200 = 216 bytes) cut at 96. The
    decoder gives the first fragment protocol 17 and the second 60, and the datagram is
    one row: UDP, ip_len = 40 (+ 8) + 216, its ports from the first fragment."""
    options = bytes([17, 0, 1, 4, 0, 0, 0, 0])  # Next Header UDP, PadN of 4
    udp = (1000).to_bytes(2, "big") + (2000).to_bytes(2, "big") + (208).to_bytes(2, "big") \
        + bytes(2) + b"x" * 200
    fragmentable = options + udp
    hbh = bytes([44, 0, 1, 4, 0, 0, 0, 0]) if hop_by_hop else b""  # Next Header: Fragment
    first_next = 0 if hop_by_hop else 44
    frames = [_ipv6_fragment(hbh, first_next, 60, 0, True, fragmentable[:96]),
              _ipv6_fragment(hbh, first_next, 60, 96, False, fragmentable[96:])]
    pb = decode(FrameBatch.from_frames(frames))
    assert pb.proto.tolist() == [17, 60]
    out = Reassembler().push(pb)
    p = out.packets
    assert len(p) == 1 and p.proto[0] == 17
    assert (p.src_port[0], p.dst_port[0]) == (1000, 2000)
    assert p.ip_len[0] == 40 + len(hbh) + 216
    assert p.payload_len[0] == 200


@pytest.mark.parametrize(("v6", "data", "ip_len", "status"), [
    (False, 65536 + 100, 120, Status.OK),  # 20 + 65,636 wraps to 120: UDP with 92 bytes
    (False, 65536 + 4, 24, Status.MALFORMED),  # 24: the IP header, not the UDP header
    (False, 65536 - 10, 10, Status.MALFORMED),  # 10: not even the IP header
    (True, 65536, 40, Status.MALFORMED),  # IPv6: a payload length of 65,536 wraps to 0
])
def test_a_datagram_too_long_for_its_length_field_wraps_as_zeek_reads_it(
        v6: bool, data: int, ip_len: int, status: Status) -> None:
    """Fragments may reach past 65,535 bytes (an offset up to 65,528 plus data); Zeek
    writes the total length into the 16-bit field of the datagram it puts back together
    (Frag.cc: htons(size + header), IPv6 htons(size + header - 40)) and reads the packet
    to that wrapped length, dropping it when its headers do not fit (IP.cc,
    invalid_IP_header_size). Zeek's own trace of this (ipv6-reassembly-state-leak) makes
    no connection."""
    half = 32768
    pb = batch(row(0, frag=(0, half, True), v6=v6), row(1, frag=(half, data - half, False), v6=v6))
    r = Reassembler()
    p = r.push(pb).packets
    assert len(p) == 1 and p.ip_len[0] == ip_len and p.status[0] == status
    if status == Status.OK:
        assert p.payload_len[0] == ip_len - 20 - 8
    assert r.stats().oversized == 1 and r.stats().datagrams == 1


def test_a_datagram_of_exactly_65535_bytes_keeps_its_length() -> None:
    pb = batch(row(0, frag=(0, 32768, True)), row(1, frag=(32768, 65535 - 20 - 32768, False)))
    r = Reassembler()
    p = r.push(pb).packets
    assert (p.ip_len[0], p.status[0], r.stats().oversized) == (65535, Status.OK, 0)


def test_truncated_first_fragment_passes_alone_and_later_ones_drop() -> None:
    pb = batch(row(0, frag=(0, 1480, True), caplen=96), row(1, frag=(1480, 100, False), caplen=60))
    r = Reassembler()
    out = r.push(pb)
    p = out.packets
    assert out.row.tolist() == [0]
    assert p.status[0] == Status.OK
    assert p.ip_len[0] == 20 + 1480  # counted with its own IP length
    assert p.payload_len[0] == 1480 - 8
    s = r.stats()
    assert (s.truncated_first, s.truncated_dropped, s.datagrams) == (1, 1, 0)
    assert r.pending().datagrams == 0


def test_first_fragment_with_a_nonsense_transport_header_still_completes() -> None:
    # The decoder marks a first fragment MALFORMED for a TCP data offset < 5;
    # Zeek reassembles first, so the datagram completes (and is MALFORMED).
    first = row(0, frag=(0, 16, True), proto=6)
    first.status[:] = Status.MALFORMED
    pb = batch(first, row(1, frag=(16, 8, False), proto=6), row(2, frag=(0, 16, True), proto=6))
    r = Reassembler()
    out = r.push(pb)
    assert out.row.tolist() == [1]
    assert out.packets.status[0] == Status.MALFORMED
    assert out.member_records.tolist() == [0, 1]
    assert r.pending().fragments == 1  # record 2 starts the next set


def test_ipv6_atomic_fragment_is_one_packet() -> None:
    # Offset 0, M=0 (RFC 8021): complete at once, without its Fragment header.
    out = Reassembler().push(batch(row(0), row(1, frag=(0, 100, False), v6=True)))
    assert out.row.tolist() == [0, 1]
    assert out.packets.status[1] == Status.OK
    assert out.packets.ip_len[1] == 40 + 100


def test_truncated_first_fragment_keeps_the_decoders_truncated_status() -> None:
    cut = row(0, frag=(0, 1480, True), proto=6, caplen=40)  # TCP header cut by the snaplen
    cut.status[:] = Status.TRUNCATED
    out = Reassembler().push(batch(cut))
    assert out.row.tolist() == [0]
    assert out.packets.status[0] == Status.TRUNCATED


def test_frag_timeout_within_a_batch_and_across_batches() -> None:
    r = Reassembler()
    t0 = 1_000 * SEC
    pb = batch(row(0, ts=t0, frag=(0, 8, True)), row(1, ts=t0 + 301 * SEC),
               row(2, ts=t0 + 302 * SEC, frag=(8, 8, False)))
    out = r.push(pb)
    assert out.row.tolist() == [1]  # the first fragment timed out before the second came
    s = r.stats()
    assert (s.expired_datagrams, s.expired_fragments, s.pending_datagrams) == (1, 1, 1)
    # A batch without fragments 300 s later expires the set left pending.
    out = r.push(batch(row(3, ts=t0 + 602 * SEC)))
    assert len(out.packets) == 1
    assert r.stats().expired_datagrams == 2 and r.pending().fragments == 0


def test_caps_evict_the_oldest_sets() -> None:
    r = Reassembler(max_datagrams=2)
    pb = batch(*(row(i, frag=(0, 8, True), ident=i) for i in range(3)))
    r.push(pb)
    s = r.stats()
    assert (s.evicted_datagrams, s.pending_datagrams) == (1, 2)
    out = r.push(batch(row(9, frag=(8, 8, False), ident=0)))  # set 0 was evicted
    assert len(out.packets) == 0
    out = r.push(batch(row(10, frag=(8, 8, False), ident=2)))
    assert out.row.tolist() == [10]
    r2 = Reassembler(max_bytes=60)  # each fragment holds ip_len 28
    r2.push(pb)
    assert r2.stats().evicted_datagrams == 1


def test_bad_options_raise() -> None:
    with pytest.raises(OptionError, match="max_bytes"):
        Reassembler(max_bytes=0)


def test_many_fragments_in_random_order_complete_once() -> None:
    # 40 datagrams of 8 fragments each, shuffled: every datagram completes
    # exactly once, on its last-arriving fragment.
    rng = np.random.default_rng(3)
    rows = [(d, k) for d in range(40) for k in range(8)]
    order = rng.permutation(len(rows))
    pb = batch(*(row(int(i), ts=int(i), frag=(rows[j][1] * 8, 8, rows[j][1] < 7),
                     ident=rows[j][0]) for i, j in enumerate(order)))
    out = Reassembler().push(pb)
    last = {}
    for i, j in enumerate(order):
        last[rows[j][0]] = i
    assert sorted(out.row.tolist()) == sorted(last.values())
    assert (out.packets.ip_len == 20 + 64).all()
    assert len(out.member_records) == 320


# The shared corpus sits beside the repository (COMMON.md); never copied into it.
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


def _need_corpus() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is absent: expected it at {CORPUS}")


# --- Light corpus checks (need the readers and the decoder, and ../shared/corpus) ---

def _decoded(name: str) -> list[PacketBatch]:
    _need_corpus()
    path = next((CORPUS / name).glob("trace.pcap*"))
    with open_capture(path) as reader:
        return [decode(fb) for fb in reader]


def _push_all(name: str) -> tuple[Reassembler, list[tuple[PacketBatch, Reassembled]]]:
    r = Reassembler()
    outs = [(pb, r.push(pb)) for pb in _decoded(name)]
    return r, outs


@pytest.mark.corpus
def test_corpus_zeek_fragmented_syn() -> None:
    # Two IPv4 fragments (ip.len 44 at offset 0, 36 at offset 24) of one SYN;
    # Zeek's output: the reassembled header has len=60 and the SYN is
    # 192.168.1.100:12345 -> 10.0.0.5:80, seq 1000, window 8192.
    r, outs = _push_all("zeek/ipv4-frag-syn")
    rows = PacketBatch.concat([o.packets for _, o in outs])
    assert len(rows) == 1
    assert (rows.src_lo[0], rows.dst_lo[0]) == (A, B)
    assert (rows.src_port[0], rows.dst_port[0]) == (12345, 80)
    assert rows.tcp_flags[0] == 0x002 and rows.seq[0] == 1000 and rows.window[0] == 8192
    assert rows.ip_len[0] == 60
    assert rows.wire_len[0] == 58 + 50
    assert rows.record[0] == 1  # the second frame completes it
    assert rows.payload_len[0] == 0  # 40-byte TCP header, no data
    assert r.stats().datagrams == 1 and r.pending().fragments == 0


@pytest.mark.corpus
def test_corpus_ndpi_dns_fragmented() -> None:
    # tshark (packets.tsv.gz) shows the reassembled UDP header on frames
    # 3, 6, 9, 12, 17, 39, 42: 4 IPv4 and 3 IPv6 two-fragment DNS responses.
    r, outs = _push_all("ndpi/dns_fragmented")
    done = PacketBatch.concat([o.packets.take(np.isin(o.packets.record, o.member_records))
                               for _, o in outs])
    assert sorted(done.record.tolist()) == [2, 5, 8, 11, 16, 38, 41]
    # tshark's udp.length of the reassembled datagrams (1710 = IPv4 ip.len 1500 + 250 - 40).
    assert sorted(done.udp_len.tolist()) == [1498, 1498, 1509, 1710, 1710, 1738, 1738]
    hdr = np.where(done.ip_version == 4, 20, 40)
    assert (done.ip_len == hdr + done.udp_len).all()
    s = r.stats()
    assert (s.fragments, s.datagrams, s.pending_fragments) == (14, 7, 0)


@pytest.mark.corpus
def test_corpus_ndpi_smb_frags_has_no_ip_fragments() -> None:
    # "frags" are SMB-level: tshark shows ip.flags.mf 0 and offset 0 on all 8 frames.
    _, outs = _push_all("ndpi/smb_frags")
    for pb, o in outs:
        assert o.packets is pb


@pytest.mark.corpus
def test_corpus_ndpi_fragment_garbage_matches_tshark() -> None:
    # 1252 frames: four datagrams of 313 TCP fragments (16 bytes each, then 8),
    # all with IP id 160; tshark shows the reassembled TCP header on frames
    # 313, 626, 939 and 1252. Each first fragment has a nonsense TCP data
    # offset (the decoder marks it MALFORMED), which must not stop reassembly.
    r, outs = _push_all("ndpi/ip_fragmented_garbage")
    done = np.concatenate([o.packets.record[np.isin(o.packets.record, o.member_records)]
                           for _, o in outs])
    assert done.tolist() == [312, 625, 938, 1251]
    s = r.stats()
    assert (s.fragments, s.fragments_completed, s.pending_fragments) == (1252, 1252, 0)


@pytest.mark.corpus
def test_corpus_nfstream_fragment_garbage_counts_add_up() -> None:
    # tshark reassembles 29 datagrams out of the 9077 fragments.
    r, _ = _push_all("nfstream/ip_fragmented_garbage")
    s = r.stats()
    assert s.datagrams == 29
    assert s.fragments == (s.fragments_completed + s.truncated_first + s.truncated_dropped
                           + s.malformed + s.expired_fragments + s.evicted_fragments
                           + s.pending_fragments)
