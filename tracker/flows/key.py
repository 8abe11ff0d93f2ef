"""Canonical bidirectional flow keys, computed for a whole batch with numpy.

A key is five uint64 words: the two endpoint addresses (hi, lo halves, the
smaller socket first) and one ``meta`` word packing protocol, the two ports,
a one-way bit and, optionally, the VLAN id. Both directions of a conversation
get the same key; ``src_is_a`` says which side sent each packet.

ICMP follows Zeek (``ICMP.cc`` L42-62, counterparts L815-872): the "source port" is the type, the "destination port" the counterpart
type of a request/reply pair, else the code; one-way types are not
canonicalized, so each direction of an unreachable flow is its own flow.
Other protocols have ports 0 (Zeek's unknown_transport).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracker.packets import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, PacketBatch

# (type, counterpart) pairs; ICMP.cc ICMP4_counterpart / ICMP6_counterpart.
_ICMP4_PAIRS = ((8, 0), (13, 14), (15, 16), (10, 9), (17, 18))
_ICMP6_PAIRS = ((128, 129), (133, 134), (135, 136), (130, 131), (139, 140), (144, 145))


def _counterpart_table(pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    """counterpart[type] for two-way types, -1 for one-way types."""
    table = np.full(256, -1, dtype=np.int32)
    for a, b in pairs:
        table[a], table[b] = b, a
    return table


_CP4 = _counterpart_table(_ICMP4_PAIRS)
_CP6 = _counterpart_table(_ICMP6_PAIRS)


def icmp_two_way(proto: np.ndarray, icmp_type: np.ndarray) -> np.ndarray:
    """Whether each ICMP/ICMPv6 type is half of a request/reply pair (the flow's
    resp_port is then the counterpart type, else the code)."""
    t = np.clip(np.asarray(icmp_type, dtype=np.int64), 0, 255)
    v6 = np.asarray(proto) == PROTO_ICMPV6
    return np.where(v6, _CP6[t], _CP4[t]) >= 0

# IPv4 255.255.255.255 mapped into IPv6 space (::ffff:255.255.255.255); Zeek's
# IsBroadcast() (IPAddr.h L143-149) is true for that address only.
_BCAST_LO = np.uint64(0x0000FFFF_FFFFFFFF)


@dataclass(frozen=True, slots=True)
class KeyBatch:
    """Keys of the rows of one PacketBatch (see the module docstring)."""

    words: np.ndarray  # uint64 (n, 5): a_hi, a_lo, b_hi, b_lo, meta
    src_is_a: np.ndarray  # bool: the packet's source is side a of the key
    sport: np.ndarray  # int32: source "port" (ICMP: type)
    dport: np.ndarray  # int32: destination "port" (ICMP: counterpart or code)
    dst_is_broadcast: np.ndarray  # bool: destination is 255.255.255.255


def icmp_ports(pb: PacketBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(type, counterpart-or-code, one_way) for ICMP/ICMPv6 rows; ports elsewhere."""
    is_v4 = pb.proto == PROTO_ICMP
    is_v6 = pb.proto == PROTO_ICMPV6
    itype = np.clip(pb.icmp_type, 0, 255).astype(np.int32)
    cp = np.where(is_v4, _CP4[itype], np.where(is_v6, _CP6[itype], -1))
    one_way = (is_v4 | is_v6) & (cp < 0)
    sport = np.where(is_v4 | is_v6, itype, pb.src_port).astype(np.int32)
    dport = np.where(one_way, pb.icmp_code, np.where(is_v4 | is_v6, cp, pb.dst_port))
    return sport, dport.astype(np.int32), one_way


def flow_keys(pb: PacketBatch, vlan_in_key: bool = False) -> KeyBatch:
    """Canonical keys of every row (rows without a transport header get ports 0)."""
    sport, dport, one_way = icmp_ports(pb)
    has_ports = (pb.proto == PROTO_TCP) | (pb.proto == PROTO_UDP) | (pb.proto == PROTO_ICMP) \
        | (pb.proto == PROTO_ICMPV6)
    sport = np.where(has_ports, sport, 0)
    dport = np.where(has_ports, dport, 0)
    # Source first when (src_hi, src_lo, sport) <= (dst_hi, dst_lo, dport).
    src_first = (pb.src_hi < pb.dst_hi) | ((pb.src_hi == pb.dst_hi) & (
        (pb.src_lo < pb.dst_lo) | ((pb.src_lo == pb.dst_lo) & (sport <= dport))))
    src_is_a = src_first | one_way
    words = np.empty((len(pb), 5), dtype=np.uint64)
    words[:, 0] = np.where(src_is_a, pb.src_hi, pb.dst_hi)
    words[:, 1] = np.where(src_is_a, pb.src_lo, pb.dst_lo)
    words[:, 2] = np.where(src_is_a, pb.dst_hi, pb.src_hi)
    words[:, 3] = np.where(src_is_a, pb.dst_lo, pb.src_lo)
    port_a = np.where(src_is_a, sport, dport).astype(np.uint64) & np.uint64(0xFFFF)
    port_b = np.where(src_is_a, dport, sport).astype(np.uint64) & np.uint64(0xFFFF)
    meta = (pb.proto.astype(np.uint64) & np.uint64(0xFF)) << np.uint64(48)
    meta |= port_a << np.uint64(32)
    meta |= port_b << np.uint64(16)
    meta |= one_way.astype(np.uint64) << np.uint64(15)
    if vlan_in_key:
        meta |= (pb.vlan.astype(np.int64) + 1).astype(np.uint64) & np.uint64(0x1FFF)
    words[:, 4] = meta
    bcast = (pb.dst_hi == 0) & (pb.dst_lo == _BCAST_LO)
    return KeyBatch(words, src_is_a, sport, dport, bcast)
