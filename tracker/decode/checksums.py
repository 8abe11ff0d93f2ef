"""Internet checksum verification for whole batches, without a loop per packet.

``verify(fb, pb)`` says, per row, whether the packet's checksums are good:
the IPv4 header checksum (RFC 791), and the TCP (RFC 9293 section 3.1), UDP
(RFC 768; RFC 8200 section 8.1 for IPv6), ICMP (RFC 792) and ICMPv6 (RFC 4443
section 2.3) checksums, with the pseudo-header where the protocol has one.
A row that cannot be checked counts as good, as in Zeek: a frame cut by the
snaplen, a fragment (its transport checksum covers the whole datagram), a
protocol without a checksum, a row that is not OK for the decoder. A zero UDP
checksum over IPv4 means "no checksum" (RFC 768) and is good; over IPv6 it is
bad (RFC 8200), except on the VXLAN port, which Zeek accepts (UDP.cc).

How: the ones' complement sum of any byte range is the integer sum of its
16-bit words taken modulo 65535 (RFC 1071 section 2). One cumulative sum over
the buffer gives every range's sum as a difference of two entries. Words are
read in the machine's native little-endian order at even buffer offsets, so a
byte at an even offset weighs 1 and one at an odd offset 256. The sum with the range's own big-endian alignment weighs a byte 256 when
it is an even distance from the range's start. As 256 * 256 = 65536 = 1
(mod 65535), swapping the weights is a multiplication by 256 (RFC 1071's byte
order independence): for a range starting at an even offset the true sum is
256 times the native one, for one starting at an odd offset it is the same.
A range whose 16-bit sum with its checksum field is 0 modulo 65535 is good.
"""

from __future__ import annotations

import numpy as np

from tracker.frames import FrameBatch
from tracker.packets import (
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    UDP_HEADER,
    PacketBatch,
    Status,
    udp_length_short,
)

ONES = 0xFFFF  # ones' complement arithmetic works modulo 2**16 - 1 (RFC 1071)
IPV4_MIN_HEADER = 20  # RFC 791
TCP_MIN_HEADER = 20  # RFC 9293
UDP_CHECKSUM_AT = 6  # byte offset of the UDP checksum field (RFC 768)
ICMP_MIN_HEADER = 4  # type, code and checksum (RFC 792, RFC 4443)
VXLAN_PORT = 4789  # RFC 7348; Zeek accepts a zero UDP checksum there over IPv6


def verify(fb: FrameBatch, pb: PacketBatch) -> np.ndarray:
    """True where every checksum of the row is good or cannot be checked.

    ``pb`` holds decoded rows of ``fb`` (all of them or some, matched by record
    number). Cost: one cumulative sum over the batch's bytes, plus a few array
    operations per row.

    Examples
    --------
    >>> from scapy.layers.inet import IP, UDP
    >>> from scapy.layers.l2 import Ether
    >>> eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    >>> frame = bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / b"hi")
    >>> fb = FrameBatch.from_frames([frame])
    >>> pb = PacketBatch.empty(1)
    >>> pb.ip_version[:], pb.proto[:], pb.l3_offset[:], pb.ip_hdr_len[:] = 4, 17, 14, 20
    >>> pb.ip_len[:], pb.l4_offset[:] = 30, 34
    >>> pb.src_lo[:], pb.dst_lo[:] = 0xFFFF0A000001, 0xFFFF0A000002
    >>> verify(fb, pb).tolist()
    [True]
    """
    header, transport = verify_parts(fb, pb)
    return header & transport


def verify_parts(fb: FrameBatch, pb: PacketBatch) -> tuple[np.ndarray, np.ndarray]:
    """``verify`` in two verdicts per row: the IPv4 header checksum (judged on every row
    whose whole header is captured, fragments and rows that are not OK included: Zeek
    checks it before anything else) and the transport checksum (OK rows only)."""
    header = np.ones(len(pb), np.bool_)
    transport = np.ones(len(pb), np.bool_)
    if not len(pb):
        return header, transport
    frame_end = _frame_end(fb, pb)
    hdr_rows = np.flatnonzero(_ipv4_header_rows(pb, frame_end))
    l4_rows = np.flatnonzero(_transport_rows(pb, frame_end))
    if not (len(hdr_rows) or len(l4_rows)):
        return header, transport
    sums = _RangeSums(fb.data)
    header[hdr_rows] = _ipv4_header_good(sums, pb, hdr_rows)
    transport[l4_rows] = _transport_good(sums, fb.data, pb, l4_rows)
    return header, transport


def _frame_end(fb: FrameBatch, pb: PacketBatch) -> np.ndarray:
    """Offset in ``fb.data`` just past each row's captured frame."""
    if len(pb) == len(fb) and pb.record[0] == fb.first_record and (
            pb.record[-1] == fb.first_record + len(fb) - 1):  # the whole batch, in order
        return fb.start + fb.caplen
    i = pb.record - fb.first_record
    return fb.start[i] + fb.caplen[i]


class _RangeSums:
    """Ones' complement sums of byte ranges of one buffer, from one prefix sum.

    Each native little-endian 32-bit word is folded into the sum of its two
    16-bit halves (2**16 = 1 modulo 65535), so a byte at offset i weighs 1
    or 256 by the parity of i, and one prefix sum over a quarter as many
    uint32 entries as the buffer has bytes serves every range. The sum of the
    bytes before offset i is the prefix up to i's word plus the folded part of
    that word below i.
    """

    def __init__(self, data: np.ndarray) -> None:
        data = np.ascontiguousarray(data)
        self.n_full = len(data) // 4  # whole words; verify() only calls with >= 20 bytes
        self.words = data[: 4 * self.n_full].view("<u4")
        tail = np.zeros(4, np.uint8)  # the last 0-3 bytes, as one more word
        tail[: len(data) - 4 * self.n_full] = data[4 * self.n_full:]
        self.tail = tail.view("<u4")[0]
        # uint32 wraps, but a difference of two entries is still exact: a range
        # (at most 65535 bytes) folds to less than 16384 * 2 * 65535 < 2**32.
        self.prefix = np.empty(self.n_full + 1, np.uint32)
        self.prefix[0] = 0
        halves = data[: 4 * self.n_full].view("<u2")
        np.add(halves[0::2], halves[1::2], out=self.prefix[1:], dtype=np.uint32)
        np.cumsum(self.prefix[1:], out=self.prefix[1:])

    def _before(self, i: np.ndarray) -> np.ndarray:
        """Native-weighted sum of the bytes before offset i (mod 2**32)."""
        q = i >> 2
        word = self.words[np.minimum(q, self.n_full - 1)]
        word[q == self.n_full] = self.tail  # i is in the last, partial word
        part = word & _BELOW[i & 3]
        return self.prefix[q] + (part & 0xFFFF) + (part >> 16)

    def sum(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Bytes [a, b) summed as 16-bit big-endian words from a, congruent
        modulo 65535 to the true sum (below 2**40; reduce it yourself)."""
        native = (self._before(b) - self._before(a)).astype(np.int64)
        return np.where((a & 1) == 1, native, native << 8)


# The bytes of a little-endian 32-bit word below byte 0, 1, 2, 3 of it.
_BELOW = np.array([0, 0xFF, 0xFFFF, 0xFFFFFF], np.uint32)


def _ipv4_header_rows(pb: PacketBatch, frame_end: np.ndarray) -> np.ndarray:
    """Rows whose whole IPv4 header is captured (fragments included, as Zeek)."""
    hdr = pb.ip_hdr_len.astype(np.int64)
    return ((pb.ip_version == 4) & (pb.l3_offset >= 0) & (hdr >= IPV4_MIN_HEADER)
            & (pb.l3_offset + hdr <= frame_end))


def _ipv4_header_good(sums: _RangeSums, pb: PacketBatch, rows: np.ndarray) -> np.ndarray:
    a = pb.l3_offset[rows]
    return sums.sum(a, a + pb.ip_hdr_len[rows]) % ONES == 0


def _transport_rows(pb: PacketBatch, frame_end: np.ndarray) -> np.ndarray:
    """Unfragmented rows of a checksummed protocol, captured to the IP end: OK rows, and
    UDP rows with a length field under 8, which Zeek checks over the IP payload as any
    datagram (UDP.cc L99-134)."""
    end = pb.l3_offset + pb.ip_len
    judged = (pb.status == Status.OK) | udp_length_short(pb)
    return (judged & (pb.l3_offset >= 0) & (pb.l4_offset >= 0)
            & (pb.frag_offset == 0) & ~pb.more_fragments & (end <= frame_end)
            & (end - pb.l4_offset >= _MIN_SEGMENT[pb.proto & 0xFF]))


# Shortest segment that holds the checksum, per IP protocol number; the
# protocols without one (and -1, no protocol, as 255) can never reach it.
_MIN_SEGMENT = np.full(256, 1 << 20, np.int64)
_MIN_SEGMENT[[PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMPV6]] = [
    TCP_MIN_HEADER, UDP_HEADER, ICMP_MIN_HEADER, ICMP_MIN_HEADER]


def _transport_good(
    sums: _RangeSums, data: np.ndarray, pb: PacketBatch, rows: np.ndarray
) -> np.ndarray:
    """Checksum over the transport segment, plus the pseudo-header but for ICMP."""
    a = pb.l4_offset[rows]
    b = pb.l3_offset[rows] + pb.ip_len[rows]
    proto = pb.proto[rows]
    pseudo = _pseudo_header(pb, rows, b - a) * (proto != PROTO_ICMP)
    good = (sums.sum(a, b) + pseudo) % ONES == 0
    udp = np.flatnonzero(proto == PROTO_UDP)
    at = a[udp] + UDP_CHECKSUM_AT
    zero = (data[at] == 0) & (data[at + 1] == 0)
    allowed = (pb.ip_version[rows[udp]] == 4) | (pb.dst_port[rows[udp]] == VXLAN_PORT)
    good[udp[zero & allowed]] = True
    return good


def _pseudo_header(pb: PacketBatch, rows: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Sum of the pseudo-header words: RFC 9293 (IPv4), RFC 8200 section 8.1 (IPv6).

    Congruent modulo 65535: a 64-bit address half folds to its two 32-bit
    halves, since 2**32 = 1. IPv4 needs no case of its own: the mapped form's
    0xFFFF word (::ffff:a.b.c.d) is 0 modulo 65535.
    """
    total = pb.proto[rows].astype(np.int64) + length
    for name in ("src_hi", "src_lo", "dst_hi", "dst_lo"):
        half = getattr(pb, name)[rows]
        total += ((half >> np.uint64(32)) + (half & np.uint64(0xFFFFFFFF))).view(np.int64)
    return total
