"""The tunnel headers carried over UDP (ZEEK-FACTS 6.6), one function per header.

Each parser takes the UDP payloads of a set of rows (``pos``: where each starts in the
frame bytes, ``limit``: where it ends) and returns an ``Inside``: where the packet inside
starts, what it is (INNER_IP, INNER_ETHERNET, or INNER_NONE when Zeek makes nothing of
it), the IP version it must have (0: either), whether it must fill the rest exactly, and
whether the payload is a protocol violation (after which Zeek stops decapsulating that
outer connection for VXLAN, Geneve, Teredo and AYIYA). ``teredo_detect`` and
``ayiya_detect`` are Zeek's payload detection for UDP ports without a tunnel analyzer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# What follows a tunnel header: an IP packet, an Ethernet frame, an 802.11 frame (Aruba's
# GRE), or nothing Zeek decodes.
INNER_IP, INNER_ETHERNET, INNER_NONE, INNER_80211 = 0, 1, 2, 3

# The tunnel analyzers of UDP ports (ZEEK-FACTS 6.1), as codes.
NONE, VXLAN, GENEVE, GTP, TEREDO, AYIYA, GRE_UDP = 0, 1, 2, 3, 4, 5, 6
TUNNEL_PORTS = {4789: VXLAN, 6081: GENEVE, 2152: GTP, 2123: GTP, 3544: TEREDO, 5072: AYIYA,
                4754: GRE_UDP}

VXLAN_LEN, VXLAN_I = 8, 0x08  # RFC 7348 section 5: the I flag says the VNI is valid
GENEVE_LEN = 8  # RFC 8926 section 3.4, plus the options
GENEVE_ETHERNET, GENEVE_ARP = 0x6558, 0x0806
ETHERTYPE_IPV4, ETHERTYPE_IPV6 = 0x0800, 0x86DD
GTP_LEN, GTP_OPTIONAL = 8, 4  # 3GPP TS 29.281 section 5.1
GTP_PT, GTP_E, GTP_S, GTP_PN = 0x10, 0x04, 0x02, 0x01
GTP_G_PDU = 255
GTP_MAX_EXTENSIONS = 8  # Zeek follows the chain to its end; real ones are short
IPV6_LEN = 40
TEREDO_AUTH, TEREDO_ORIGIN = 0x0001, 0x0000  # RFC 4380 section 5.1.1
TEREDO_AUTH_FIXED, TEREDO_ORIGIN_LEN = 13, 8
TEREDO_PREFIX = (0x20, 0x01, 0x00, 0x00)  # 2001::/32
AYIYA_FIXED = 8  # RFC 4891 section 5 (identity and signature follow)
AYIYA_FORWARD = 1
AYIYA_DETECT = (0x52, 0x11)  # AYIYA.cc L75-78: bytes 1 and 2 of the payload
PROTO_IPIP, PROTO_IPV6_IN_IP = 4, 41


@dataclass(slots=True)
class Inside:
    """What a tunnel header says of the packet inside, per row."""

    start: np.ndarray  # int64: where the inner packet starts in the frame bytes
    kind: np.ndarray  # int8: INNER_*
    version: np.ndarray  # int8: the IP version it must have (0: 4 or 6)
    exact: np.ndarray  # bool: it must fill the rest of the payload exactly
    violation: np.ndarray  # bool: a protocol violation (Zeek's AnalyzerViolation)

    @classmethod
    def of(cls, start: np.ndarray, kind: np.ndarray | int) -> Inside:
        n = start.size
        kinds = np.asarray(kind, np.int8) if isinstance(kind, np.ndarray) \
            else np.full(n, kind, np.int8)
        return cls(start, kinds, np.zeros(n, np.int8), np.zeros(n, np.bool_),
                   np.zeros(n, np.bool_))


def byte_at(data: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """The byte at each ``pos``, -1 where it is at or past ``limit`` (not captured)."""
    inside = pos < limit  # limit is within data, and positions are never negative
    return np.where(inside, data[np.where(inside, pos, 0)].astype(np.int64), -1)


def u16_at(data: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Big-endian 16-bit words at ``pos``, -1 where not wholly captured."""
    hi, lo = byte_at(data, pos, limit), byte_at(data, pos + 1, limit)
    return np.where((hi >= 0) & (lo >= 0), hi << 8 | lo, -1)


def vxlan(data: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> Inside:
    """VXLAN.cc L12-69: 8 bytes with the I flag, then an Ethernet frame."""
    out = Inside.of(pos + VXLAN_LEN, INNER_ETHERNET)
    flags = byte_at(data, pos, limit)
    out.violation = (pos + VXLAN_LEN > limit) | (flags < 0) | (flags & VXLAN_I == 0)
    out.kind[out.violation] = INNER_NONE
    return out


def geneve(data: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> Inside:
    """Geneve.cc L52-129: 8 bytes, the options, then what the protocol type names."""
    first = byte_at(data, pos, limit)
    ptype = u16_at(data, pos + 2, limit)
    start = pos + GENEVE_LEN + 4 * (np.maximum(first, 0) & 0x3F)
    out = Inside.of(start, INNER_NONE)
    out.violation = (pos + GENEVE_LEN > limit) | (start > limit)
    good = ~out.violation & (first >> 6 == 0)  # version 1+: dropped, not a violation
    out.kind[good & (ptype == GENEVE_ETHERNET)] = INNER_ETHERNET
    out.kind[good & ((ptype == ETHERTYPE_IPV4) | (ptype == ETHERTYPE_IPV6))] = INNER_IP
    return out  # ARP (0x0806) and other types: nothing Zeek makes a flow of


def gtp(data: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> Inside:
    """GTPv1.cc and gtpv1-analyzer.pac: a G-PDU carries exactly one IP packet.

    8 bytes, 4 more when E, S or PN is set, then the extension headers (length in
    4-byte words, the next type in the last byte). The version must be 1 and the PT bit
    set; other message types than G-PDU carry nothing.
    """
    flags = byte_at(data, pos, limit)
    mtype = byte_at(data, pos + 1, limit)
    start = pos + GTP_LEN + np.where(flags & (GTP_E | GTP_S | GTP_PN) != 0, GTP_OPTIONAL, 0)
    bad = (pos + GTP_LEN > limit) | (flags < 0) | (flags >> 5 != 1)
    nxt = np.where(flags & GTP_E != 0, byte_at(data, pos + GTP_LEN + 3, limit), 0)
    for _ in range(GTP_MAX_EXTENSIONS):
        more = (nxt > 0) & ~bad
        if not more.any():
            break
        words = byte_at(data, start, limit)
        bad |= more & (words <= 0)
        size = 4 * np.maximum(words, 1)
        nxt = np.where(more, byte_at(data, start + size - 1, limit), 0)
        start = np.where(more, start + size, start)
    bad |= nxt != 0
    version = byte_at(data, start, limit) >> 4
    carries = ~bad & (flags & GTP_PT != 0) & (mtype == GTP_G_PDU)
    out = Inside.of(start, np.where(carries, INNER_IP, INNER_NONE).astype(np.int8))
    out.exact[:] = True
    out.violation = bad | (carries & (version != 4) & (version != 6))
    out.kind[out.violation] = INNER_NONE
    return out


def _teredo_headers(data: np.ndarray, pos: np.ndarray, limit: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(where the IPv6 packet starts after the optional authentication and origin
    indication headers, whether an origin indication was there)."""
    first = u16_at(data, pos, limit)
    auth = first == TEREDO_AUTH
    size = TEREDO_AUTH_FIXED + np.maximum(byte_at(data, pos + 2, limit), 0) \
        + np.maximum(byte_at(data, pos + 3, limit), 0)
    start = np.where(auth, pos + size, pos)
    origin = u16_at(data, start, limit) == TEREDO_ORIGIN
    return np.where(origin, start + TEREDO_ORIGIN_LEN, start), origin


def teredo(data: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> Inside:
    """Teredo.cc L20-87: optional authentication, optional origin indication, then
    exactly one IPv6 packet (the exact length is checked by the caller, who knows the
    inner packet: a longer payload is allowed behind a bubble only)."""
    start, _ = _teredo_headers(data, pos, limit)
    ipv6 = (byte_at(data, start, limit) >> 4 == 6) & (start + IPV6_LEN <= limit)
    out = Inside.of(start, np.where(ipv6, INNER_IP, INNER_NONE).astype(np.int8))
    out.version[:] = 6
    out.exact[:] = True
    out.violation = ~ipv6
    return out


def teredo_detect(data: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Teredo.cc L249-308: an IPv6 header with a Teredo address (2001::/32) as source or
    destination, or an origin indication (after an optional authentication) and then an
    IPv6 header; 40 bytes at least."""
    long_enough = pos + IPV6_LEN <= limit
    first = byte_at(data, pos, limit)
    prefix = np.zeros(pos.size, np.bool_)
    for at in (8, 24):  # source and destination address
        same = np.ones(pos.size, np.bool_)
        for k, want in enumerate(TEREDO_PREFIX):
            same &= byte_at(data, pos + at + k, limit) == want
        prefix |= same
    bare = (first >> 4 == 6) & prefix
    start, origin = _teredo_headers(data, pos, limit)
    behind = origin & (byte_at(data, start, limit) >> 4 == 6) & (start + IPV6_LEN <= limit)
    return long_enough & (bare | behind)


def ayiya(data: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> Inside:
    """AYIYA.cc L11-78: 8 bytes, the identity (2^code bytes) and signature (4 x length),
    then the packet the next-header byte names (4: IPv4, 41: IPv6) on a forward."""
    b0, b1, b2 = (byte_at(data, pos + k, limit) for k in range(3))
    nh = byte_at(data, pos + 3, limit)
    start = pos + AYIYA_FIXED + (1 << (np.maximum(b0, 0) >> 4)) + 4 * (np.maximum(b1, 0) >> 4)
    out = Inside.of(start, INNER_NONE)
    out.violation = (pos + AYIYA_FIXED > limit) | (start > limit)
    forward = ~out.violation & (b2 & 0x0F == AYIYA_FORWARD)
    out.kind[forward & ((nh == PROTO_IPIP) | (nh == PROTO_IPV6_IN_IP))] = INNER_IP
    out.version[:] = np.where(nh == PROTO_IPIP, 4, 6)
    return out


def ayiya_detect(data: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """AYIYA.cc L75-78: three bytes at least, the second 0x52 and the third 0x11."""
    return (byte_at(data, pos + 1, limit) == AYIYA_DETECT[0]) \
        & (byte_at(data, pos + 2, limit) == AYIYA_DETECT[1])
