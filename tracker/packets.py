"""PacketBatch: decoded header columns, one row per frame, as numpy arrays.

The decoder fills it; the flow table and the packets DataFrame read it. Every
array has one entry per frame of the FrameBatch it came from, in the same
order. A field that a frame does not have holds the ``NONE`` sentinel of its
column (-1, or 0 for flags and addresses), so no masked arrays are needed.

Addresses are 128-bit, held as two big-endian uint64 halves so that sorting
(hi, lo) sorts addresses numerically; IPv4 is mapped into IPv6 space
(``::ffff:a.b.c.d``, RFC 4291 section 2.5.5.2).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum

import numpy as np


class Status(IntEnum):
    """Why a row is not a normal packet; OK rows carry every header they have."""

    OK = 0
    TRUNCATED = 1  # a header is cut short by the snaplen; fields before the cut are set
    NOT_IP = 2  # the link layer carries something else (ARP, LLDP, ...)
    UNSUPPORTED_LINK = 3  # the link type or an encapsulation is not decoded
    FRAGMENT = 4  # an IP fragment; offset 0 carries the transport header, others do not
    MALFORMED = 5  # a header field holds nonsense (IHL < 5, ip_len < header, ...)


# IPv4-mapped IPv6 prefix ::ffff:0:0/96, as the high 32 bits of the low half.
V4_MAPPED = np.uint64(0x0000FFFF_00000000)

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58


@dataclass(slots=True)
class PacketBatch:
    """Decoded headers of one FrameBatch (see the module docstring).

    The packets DataFrame documents each column for users (report/columns.py);
    these are the raw arrays behind it.
    """

    record: np.ndarray  # int64: record number of the frame in its source (0-based)
    ts_ns: np.ndarray  # int64: ns since the epoch, UTC; NAT_NS when unknown
    wire_len: np.ndarray  # int64: frame length on the wire
    caplen: np.ndarray  # int64: captured length
    status: np.ndarray  # uint8: Status
    vlan: np.ndarray  # int32: outermost 802.1Q/802.1ad VLAN id, -1 when untagged
    l3_offset: np.ndarray  # int64: offset of the IP header in FrameBatch.data, -1 if none
    ip_version: np.ndarray  # uint8: 4, 6, or 0 when not IP
    proto: np.ndarray  # int16: transport protocol number (after IPv6 ext headers), -1 if none
    ip_hdr_len: np.ndarray  # int32: IPv4 IHL*4, or 40 + IPv6 extension headers; -1 if none
    ip_len: np.ndarray  # int64: IPv4 total length, IPv6 payload length + 40; -1 if none
    src_hi: np.ndarray  # uint64: source address, high 64 bits
    src_lo: np.ndarray  # uint64: source address, low 64 bits
    dst_hi: np.ndarray  # uint64: destination address, high 64 bits
    dst_lo: np.ndarray  # uint64: destination address, low 64 bits
    ip_id: np.ndarray  # int64: IPv4 identification or IPv6 fragment id; -1 if none
    frag_offset: np.ndarray  # int32: fragment offset in bytes; 0 when not a fragment
    more_fragments: np.ndarray  # bool: the MF flag (IPv4) or M flag (IPv6 fragment header)
    l4_offset: np.ndarray  # int64: offset of the transport header in FrameBatch.data, -1 if none
    src_port: np.ndarray  # int32: TCP/UDP source port, -1 if none
    dst_port: np.ndarray  # int32: TCP/UDP destination port, -1 if none
    tcp_flags: np.ndarray  # uint16: the 9 TCP flag bits (NS..FIN), 0 if not TCP
    seq: np.ndarray  # uint32: TCP sequence number
    ack: np.ndarray  # uint32: TCP acknowledgment number
    window: np.ndarray  # int32: TCP window (unscaled), -1 if not TCP
    tcp_hdr_len: np.ndarray  # int16: TCP data offset * 4, -1 if not TCP
    udp_len: np.ndarray  # int32: the UDP length field, -1 if not UDP
    payload_len: np.ndarray  # int64: transport payload bytes from the IP lengths, -1 if unknown
    icmp_type: np.ndarray  # int16: ICMP / ICMPv6 type, -1 if none
    icmp_code: np.ndarray  # int16: ICMP / ICMPv6 code, -1 if none

    def __len__(self) -> int:
        return int(self.record.shape[0])

    @classmethod
    def empty(cls, n: int) -> PacketBatch:
        """A batch of n rows holding the NONE value of every column."""
        return cls(**{name: np.full(n, fill, dtype) for name, dtype, fill in _COLUMNS})

    @classmethod
    def concat(cls, batches: list[PacketBatch]) -> PacketBatch:
        """One batch with the rows of all, in order."""
        if not batches:
            return cls.empty(0)
        return cls(**{f.name: np.concatenate([getattr(b, f.name) for b in batches])
                      for f in fields(cls)})

    def take(self, index: np.ndarray) -> PacketBatch:
        """The rows at ``index`` (an integer or boolean array)."""
        return PacketBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


# (name, dtype, NONE value) for every PacketBatch column, in field order.
_COLUMNS: list[tuple[str, type, int]] = [
    ("record", np.int64, 0),
    ("ts_ns", np.int64, 0),
    ("wire_len", np.int64, 0),
    ("caplen", np.int64, 0),
    ("status", np.uint8, int(Status.OK)),
    ("vlan", np.int32, -1),
    ("l3_offset", np.int64, -1),
    ("ip_version", np.uint8, 0),
    ("proto", np.int16, -1),
    ("ip_hdr_len", np.int32, -1),
    ("ip_len", np.int64, -1),
    ("src_hi", np.uint64, 0),
    ("src_lo", np.uint64, 0),
    ("dst_hi", np.uint64, 0),
    ("dst_lo", np.uint64, 0),
    ("ip_id", np.int64, -1),
    ("frag_offset", np.int32, 0),
    ("more_fragments", np.bool_, False),
    ("l4_offset", np.int64, -1),
    ("src_port", np.int32, -1),
    ("dst_port", np.int32, -1),
    ("tcp_flags", np.uint16, 0),
    ("seq", np.uint32, 0),
    ("ack", np.uint32, 0),
    ("window", np.int32, -1),
    ("tcp_hdr_len", np.int16, -1),
    ("udp_len", np.int32, -1),
    ("payload_len", np.int64, -1),
    ("icmp_type", np.int16, -1),
    ("icmp_code", np.int16, -1),
]
assert [c[0] for c in _COLUMNS] == [f.name for f in fields(PacketBatch)]
