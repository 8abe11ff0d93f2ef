"""Transport headers: TCP, UDP, ICMP/ICMPv6, and the rest (protocol number only).

A transport header is read only within both the capture and the IP payload
(by the IP length fields), so Ethernet padding is never taken for a header.
A header that the IP payload cannot hold is MALFORMED; one cut by the
snaplen is TRUNCATED with the fields before the cut. ``payload_len`` comes
from the IP length fields, never from the captured length.

In a first fragment the transport fields are read the same way, but the
fragment need not hold the whole header: only a cut by the capture (TRUNCATED)
or a nonsense field (MALFORMED) replaces its FRAGMENT status.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracker.decode._bytes import ByteView, Cursor, clear_cut, column, header, put, set_status
from tracker.packets import (
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    PacketBatch,
    Status,
)

# Header tables: (field, numpy type) in wire order; the comments give byte offsets.
TCP = header(  # RFC 9293 section 3.1
    ("sport", ">u2"),  # 0-1
    ("dport", ">u2"),  # 2-3
    ("seq", ">u4"),  # 4-7
    ("ack", ">u4"),  # 8-11
    ("off_flags", ">u2"),  # 12-13: data offset (4 bits) | reserved (3) | NS (1, RFC 3540)
    #                               | CWR ECE URG ACK PSH RST SYN FIN (8)
    ("win", ">u2"),  # 14-15
    ("sum", ">u2"),  # 16-17
    ("urp", ">u2"),  # 18-19; options follow, up to the data offset * 4
)
UDP = header(  # RFC 768
    ("sport", ">u2"),  # 0-1
    ("dport", ">u2"),  # 2-3
    ("ulen", ">u2"),  # 4-5: header and data
    ("sum", ">u2"),  # 6-7
)
ICMP = header(  # RFC 792; ICMPv6 RFC 4443 section 2.1
    ("type", "u1"),  # 0
    ("code", "u1"),  # 1
    ("sum", ">u2"),  # 2-3
    ("rest", ">u4"),  # 4-7: rest of header (echo id and sequence, ...)
)
TCP_MIN_LEN = 20  # data offset >= 5
UDP_LEN = UDP.itemsize  # 8: the smallest UDP length
ICMP_LEN = ICMP.itemsize  # 8: the ICMP header before the payload

# (column, byte end): a field is kept only when its last byte is there.
_TCP_CUT = (("src_port", 2), ("dst_port", 4), ("seq", 8), ("ack", 12),
            ("tcp_hdr_len", 13), ("tcp_flags", 14), ("window", 16))
_UDP_CUT = (("src_port", 2), ("dst_port", 4), ("udp_len", 6))
_ICMP_CUT = (("icmp_type", 1), ("icmp_code", 2))

# Transport kinds, and the kind of each IP protocol number (IANA registry),
# one table per IP version because ICMP is 1 in IPv4 and 58 in IPv6.
KIND_TCP, KIND_UDP, KIND_ICMP, KIND_OTHER = range(4)
KIND_V4 = np.full(256, KIND_OTHER, np.int8)
KIND_V4[[PROTO_TCP, PROTO_UDP, PROTO_ICMP]] = [KIND_TCP, KIND_UDP, KIND_ICMP]
KIND_V6 = np.full(256, KIND_OTHER, np.int8)
KIND_V6[[PROTO_TCP, PROTO_UDP, PROTO_ICMPV6]] = [KIND_TCP, KIND_UDP, KIND_ICMP]


@dataclass(slots=True)
class Segment:
    """Frames at their transport header, with what the IP layer knows of them."""

    cur: Cursor  # rows, transport header position, captured end
    payload: np.ndarray  # int64: IP payload bytes from cur.pos, by the IP length fields
    kind: np.ndarray  # int8: KIND_* of the IP protocol
    fragment: np.ndarray | None  # bool: a first fragment (status stays FRAGMENT); None: none

    def select(self, mask: np.ndarray) -> Segment:
        """The frames where ``mask`` is true."""
        if mask.all():
            return self
        fragment = None if self.fragment is None else self.fragment[mask]
        return Segment(self.cur.select(mask), self.payload[mask], self.kind[mask], fragment)


def _settle(out: PacketBatch, seg: Segment, need: np.ndarray | int,
            nonsense: np.ndarray) -> None:
    """Status of a header of ``need`` bytes: MALFORMED where the IP payload cannot
    hold it or a field is ``nonsense``, else TRUNCATED where the capture cut it.

    A first fragment holds what it holds: only the capture can cut it short.
    """
    captured = seg.cur.avail()
    short = seg.payload < need
    cut = captured < need
    if seg.fragment is not None:
        short &= ~seg.fragment
        cut = np.where(seg.fragment, captured < np.minimum(need, seg.payload), cut)
    set_status(out, seg.cur.rows, cut, Status.TRUNCATED)
    set_status(out, seg.cur.rows, short | nonsense, Status.MALFORMED)


def tcp(bv: ByteView, seg: Segment, out: PacketBatch) -> None:
    """TCP: ports, sequence numbers, the 9 flags, window, header length."""
    r = seg.cur.rows
    head = bv.records(seg.cur.pos, TCP)
    off_flags = column(head, "off_flags")
    hdr_len = (off_flags >> 10) & 0x3C  # data offset * 4
    put(out.src_port, r, head["sport"])
    put(out.dst_port, r, head["dport"])
    put(out.seq, r, head["seq"])
    put(out.ack, r, head["ack"])
    put(out.tcp_hdr_len, r, hdr_len)
    put(out.tcp_flags, r, off_flags & 0x1FF)  # NS and the 8 flags
    put(out.window, r, head["win"])
    payload = seg.payload - hdr_len
    captured = seg.cur.avail()
    if not ((captured < hdr_len) | (payload < 0) | (hdr_len < TCP_MIN_LEN)).any():
        put(out.payload_len, r, payload)
        return
    avail = np.minimum(captured, seg.payload)
    clear_cut(out, r, avail, _TCP_CUT)
    known = avail >= 13  # the data offset was read
    put(out.payload_len, r, payload, known & (hdr_len >= TCP_MIN_LEN) & (payload >= 0))
    # The options count: Zeek drops a segment whose options are cut (truncated_header).
    need = np.where(known, np.maximum(hdr_len, TCP_MIN_LEN), TCP_MIN_LEN)
    _settle(out, seg, need, known & (hdr_len < TCP_MIN_LEN))


def udp(bv: ByteView, seg: Segment, out: PacketBatch) -> None:
    """UDP: ports and length; the payload length comes from the IP header."""
    r = seg.cur.rows
    head = bv.records(seg.cur.pos, UDP)
    length = column(head, "ulen")
    put(out.src_port, r, head["sport"])
    put(out.dst_port, r, head["dport"])
    put(out.udp_len, r, length)
    captured = seg.cur.avail()
    fits = seg.payload >= UDP_LEN
    if not ((captured < UDP_LEN) | ~fits | (length < UDP_LEN)).any():
        put(out.payload_len, r, seg.payload - UDP_LEN)
        return
    avail = np.minimum(captured, seg.payload)
    clear_cut(out, r, avail, _UDP_CUT)
    put(out.payload_len, r, seg.payload - UDP_LEN, fits)
    _settle(out, seg, UDP_LEN, (avail >= 6) & (length < UDP_LEN))


def icmp(bv: ByteView, seg: Segment, out: PacketBatch) -> None:
    """ICMP / ICMPv6: type and code; the payload is what follows the 8-byte header."""
    r = seg.cur.rows
    head = bv.records(seg.cur.pos, ICMP)
    put(out.icmp_type, r, head["type"])
    put(out.icmp_code, r, head["code"])
    clear_cut(out, r, np.minimum(seg.cur.avail(), seg.payload), _ICMP_CUT)
    fits = seg.payload >= ICMP_LEN
    put(out.payload_len, r, seg.payload - ICMP_LEN, fits)
    _settle(out, seg, ICMP_LEN, np.zeros(len(seg.cur), np.bool_))


def other(bv: ByteView, seg: Segment, out: PacketBatch) -> None:
    """Any other protocol (SCTP, GRE, ESP, ...): no ports; the IP payload is payload.

    Tunnels are not entered: the frame counts as its outer header only.
    """
    put(out.payload_len, seg.cur.rows, seg.payload)


_DECODERS = ((KIND_TCP, tcp), (KIND_UDP, udp), (KIND_ICMP, icmp), (KIND_OTHER, other))


def decode_transport(bv: ByteView, seg: Segment, out: PacketBatch) -> None:
    """Decode the transport header of every frame of ``seg``, by protocol."""
    if len(seg.cur) == 0:
        return
    put(out.l4_offset, seg.cur.rows, seg.cur.pos)
    for kind, decoder in _DECODERS:
        mask = seg.kind == kind
        if mask.any():
            decoder(bv, seg.select(mask), out)
