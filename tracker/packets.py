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

from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any

import numpy as np


class Status(IntEnum):
    """Why a row is not a normal packet; OK rows carry every header they have."""

    OK = 0
    TRUNCATED = 1  # a header is cut short by the snaplen; fields before the cut are set
    NOT_IP = 2  # the link layer carries something else (ARP, LLDP, ...)
    UNSUPPORTED_LINK = 3  # the link type or an encapsulation is not decoded
    FRAGMENT = 4  # an IP fragment; offset 0 carries the transport header, others do not
    MALFORMED = 5  # a header field holds nonsense (IHL < 5, ip_len < header, ...)
    ENCRYPTED = 6  # an 802.11 data frame with the Protected bit: ciphertext, not decoded


# IPv4-mapped IPv6 prefix ::ffff:0:0/96, as the high 32 bits of the low half.
V4_MAPPED = np.uint64(0x0000FFFF_00000000)

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
UDP_HEADER = 8  # RFC 768: the UDP header, and the smallest valid UDP length field
PROTO_ICMPV6 = 58
IP_TUNNEL_PROTOS = (4, 41, 47)  # IP-in-IP (IPv4 and IPv6 inside) and GRE: Zeek's IP tunnels

# The checksum column (decode(..., checksums=True) verifies; tracker/decode/checksums.py).
CHECKSUM_UNCHECKED = -1  # decoded without verifying
CHECKSUM_BAD = 0  # a bad TCP, UDP or ICMP checksum: the packet marks 'C' in its flow
CHECKSUM_GOOD = 1  # good, or nothing to check (a fragment, a cut frame, a row not OK)
CHECKSUM_BAD_IP = 2  # a bad IPv4 header checksum: the packet is in no flow at all (Zeek)


def _column(dtype: type, none: object) -> dict[str, Any]:
    """A PacketBatch field's metadata: a numpy column of ``dtype`` whose NONE value is ``none``."""
    return {"dtype": np.dtype(dtype), "none": none}


@dataclass(slots=True)
class PacketBatch:
    """Decoded headers of one FrameBatch (see the module docstring).

    Each field is one numpy column; its dtype and NONE value are declared
    once, here, and ``empty``, the decoder and every copy take them from these
    declarations. The packets DataFrame documents the columns for users
    (report/columns.py); these are the raw arrays behind it.
    """

    record: np.ndarray = field(metadata=_column(np.int64, 0))
    """Record number of the frame in its source (0-based)"""
    ts_ns: np.ndarray = field(metadata=_column(np.int64, 0))
    """Nanoseconds since the epoch, UTC; NAT_NS when unknown"""
    wire_len: np.ndarray = field(metadata=_column(np.int64, 0))
    """Frame length on the wire"""
    caplen: np.ndarray = field(metadata=_column(np.int64, 0))
    """Captured length"""
    status: np.ndarray = field(metadata=_column(np.uint8, int(Status.OK)))
    """Status: OK, or why the row is not a normal packet"""
    vlan: np.ndarray = field(metadata=_column(np.int32, -1))
    """Outermost 802.1Q/802.1ad VLAN id, -1 when untagged"""
    l3_offset: np.ndarray = field(metadata=_column(np.int64, -1))
    """Offset of the IP header in FrameBatch.data, -1 if none"""
    ip_version: np.ndarray = field(metadata=_column(np.uint8, 0))
    """4, 6, or 0 when not IP"""
    proto: np.ndarray = field(metadata=_column(np.int16, -1))
    """Transport protocol number (after IPv6 ext headers), -1 if none"""
    ip_hdr_len: np.ndarray = field(metadata=_column(np.int32, -1))
    """IPv4 IHL*4, or 40 + IPv6 extension headers; -1 if none"""
    ip_len: np.ndarray = field(metadata=_column(np.int64, -1))
    """IPv4 total length, IPv6 payload length + 40; -1 if none"""
    src_hi: np.ndarray = field(metadata=_column(np.uint64, 0))
    """Source address, high 64 bits"""
    src_lo: np.ndarray = field(metadata=_column(np.uint64, 0))
    """Source address, low 64 bits"""
    dst_hi: np.ndarray = field(metadata=_column(np.uint64, 0))
    """Destination address, high 64 bits"""
    dst_lo: np.ndarray = field(metadata=_column(np.uint64, 0))
    """Destination address, low 64 bits"""
    ip_id: np.ndarray = field(metadata=_column(np.int64, -1))
    """IPv4 identification or IPv6 fragment id; -1 if none"""
    frag_offset: np.ndarray = field(metadata=_column(np.int32, 0))
    """Fragment offset in bytes; 0 when not a fragment"""
    more_fragments: np.ndarray = field(metadata=_column(np.bool_, False))
    """The MF flag (IPv4) or M flag (IPv6 fragment header)"""
    l4_offset: np.ndarray = field(metadata=_column(np.int64, -1))
    """Offset of the transport header in FrameBatch.data, -1 if none"""
    src_port: np.ndarray = field(metadata=_column(np.int32, -1))
    """TCP/UDP source port, -1 if none"""
    dst_port: np.ndarray = field(metadata=_column(np.int32, -1))
    """TCP/UDP destination port, -1 if none"""
    tcp_flags: np.ndarray = field(metadata=_column(np.uint16, 0))
    """The 9 TCP flag bits (NS..FIN), 0 if not TCP"""
    seq: np.ndarray = field(metadata=_column(np.uint32, 0))
    """TCP sequence number"""
    ack: np.ndarray = field(metadata=_column(np.uint32, 0))
    """TCP acknowledgment number"""
    window: np.ndarray = field(metadata=_column(np.int32, -1))
    """TCP window (unscaled), -1 if not TCP"""
    tcp_hdr_len: np.ndarray = field(metadata=_column(np.int16, -1))
    """TCP data offset * 4, -1 if not TCP"""
    udp_len: np.ndarray = field(metadata=_column(np.int32, -1))
    """The UDP length field, -1 if not UDP"""
    payload_len: np.ndarray = field(metadata=_column(np.int64, -1))
    """Transport payload bytes from the IP lengths, -1 if unknown"""
    icmp_type: np.ndarray = field(metadata=_column(np.int16, -1))
    """ICMP / ICMPv6 type, -1 if none"""
    icmp_code: np.ndarray = field(metadata=_column(np.int16, -1))
    """ICMP / ICMPv6 code, -1 if none"""
    ip_caplen: np.ndarray = field(metadata=_column(np.int64, -1))
    """Bytes of the IP packet in the capture (IP header to frame end), -1 if none"""
    dns_qr: np.ndarray = field(metadata=_column(np.int8, -1))
    """DNS QR bit (RFC 1035 4.1.1) of an OK UDP packet with 12+ payload bytes captured, or -1"""
    ntp_mode: np.ndarray = field(metadata=_column(np.int8, -1))
    """NTP mode (RFC 5905 7.3: 3 client, 4 server) of an OK UDP packet with 48+ payload
    bytes, its first byte's low 3 bits; -1 elsewhere (Zeek's NTP role flip)"""
    checksum: np.ndarray = field(metadata=_column(np.int8, CHECKSUM_UNCHECKED))
    """CHECKSUM_GOOD, CHECKSUM_BAD, CHECKSUM_BAD_IP, or CHECKSUM_UNCHECKED (decoded
    without verifying)"""
    tunnel_hint: np.ndarray = field(metadata=_column(np.bool_, False))
    """The row may carry a tunnel (decode/payload.py): IP-in-IP, GRE, UDP on a tunnel
    port or with a payload that could be Teredo or AYIYA"""
    depth: np.ndarray = field(metadata=_column(np.uint8, 0))
    """Tunnel levels around this packet: 0 for the frame's own packet; the flow rows of
    tracker/decode/tunnels.py add the packets inside tunnels with their depth"""
    carrier_depth: np.ndarray = field(metadata=_column(np.int8, -1))
    """When the packet's innermost tunnel runs over UDP: the depth of the row (same
    record) carrying it, whose flow is this packet's tunnel parent; -1 otherwise"""
    ip_tunnel: np.ndarray = field(metadata=_column(np.uint64, 0))
    """When the innermost tunnel is an IP tunnel (IP-in-IP, GRE, GRE over UDP): its key,
    a hash of the unordered outer address pair; 0 otherwise"""
    encap: np.ndarray = field(metadata=_column(np.uint64, 0))
    """A hash of the whole tunnel stack around the packet (0: none), to see a flow's
    packets change tunnels (Zeek's tunnel_changed)"""
    tunnel_refused: np.ndarray = field(metadata=_column(np.bool_, False))
    """A UDP row carrying a VXLAN, Geneve, Teredo or AYIYA tunnel that Zeek does not
    open, being already Tunnel::max_depth levels deep: its flow's history takes 'X'"""

    def __len__(self) -> int:
        return int(self.record.shape[0])

    @classmethod
    def empty(cls, n: int) -> PacketBatch:
        """A batch of n rows holding the NONE value of every column."""
        return cls(**{name: np.full(n, none, dtype) for name, dtype, none in SCHEMA})

    @classmethod
    def concat(cls, batches: list[PacketBatch]) -> PacketBatch:
        """One batch with the rows of all, in order."""
        if not batches:
            return cls.empty(0)
        return cls(**{name: np.concatenate([getattr(b, name) for b in batches])
                      for name, _, _ in SCHEMA})

    def take(self, index: np.ndarray) -> PacketBatch:
        """The rows at ``index`` (an integer or boolean array)."""
        return PacketBatch(**{name: getattr(self, name)[index] for name, _, _ in SCHEMA})


# (name, dtype, NONE value) of every column, in field order, from the declarations above.
SCHEMA: list[tuple[str, np.dtype, object]] = [
    (f.name, f.metadata["dtype"], f.metadata["none"]) for f in fields(PacketBatch)]


# IP fragments, as both the flow table's accounting (flows/fragments.py) and the bytes
# put back together for tunnels (decode/tunnel_fragments.py) take them, so that both
# name the same completing fragment.
# Zeek's frag_timeout (scripts/base/init-bare.zeek L1993): 5 min of packet time.
FRAG_TIMEOUT_NS = 300 * 10**9
# A bound on the datagrams waiting for reassembly (Zeek has none; ours keeps memory
# bounded): the IPv4 identification space (16 bits, RFC 791) of one address pair.
MAX_PENDING_DATAGRAMS = 65_536
IP_LENGTH_WRAP = 1 << 16  # IPv4's total length and IPv6's payload length are 16 bits
IPV6_FIXED_HEADER = 40  # RFC 8200: the bytes IPv6's payload length leaves out


def wrapped_ip_length(total: Any, v6: Any) -> Any:
    """The IP length of a reassembled datagram of ``total`` bytes as Zeek writes it into
    the datagram's 16-bit field and reads it back (Frag.cc: htons(total), IPv6
    htons(total - 40)): ``total`` itself up to 65,535 bytes (IPv6 65,575), modulo the
    field past that. ``total`` and ``v6``: ints and bools, or arrays of them."""
    fixed = IPV6_FIXED_HEADER * v6
    return (total - fixed) % IP_LENGTH_WRAP + fixed


def fragments(pb: PacketBatch) -> np.ndarray:
    """Rows that are IP fragments (a first one included)."""
    return (pb.status == Status.FRAGMENT) | pb.more_fragments | (pb.frag_offset != 0)


def udp_length_short(pb: PacketBatch) -> np.ndarray:
    """UDP rows whose whole header was captured inside the IP payload but whose length
    field is under 8: MALFORMED to the decoder, a datagram to Zeek, which keys the
    connection on the header and counts the packet with the field minus 8 as its
    bytes, negative as that is (UDP.cc L136-189; flows/table.py takes them)."""
    udp = (pb.status == Status.MALFORMED) & (pb.proto == PROTO_UDP) & (pb.ip_version > 0)
    short = udp & (pb.src_port >= 0) & (pb.udp_len >= 0) & (pb.udp_len < UDP_HEADER)
    if not short.any():
        return short
    return (short & (pb.ip_caplen >= pb.ip_hdr_len + UDP_HEADER)
            & (pb.ip_len >= pb.ip_hdr_len + UDP_HEADER))
