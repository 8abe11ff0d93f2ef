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

from tracker.jit import kernel
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
    n = len(pb)
    words = np.empty((n, 5), dtype=np.uint64)
    src_is_a = np.empty(n, dtype=np.bool_)
    sport = np.empty(n, dtype=np.int32)
    dport = np.empty(n, dtype=np.int32)
    bcast = np.empty(n, dtype=np.bool_)
    _keys(pb.proto, pb.icmp_type, pb.icmp_code, pb.src_port, pb.dst_port, pb.src_hi,
          pb.src_lo, pb.dst_hi, pb.dst_lo, pb.vlan, vlan_in_key, _CP4, _CP6, words,
          src_is_a, sport, dport, bcast)
    return KeyBatch(words, src_is_a, sport, dport, bcast)


@kernel
def _keys(proto: np.ndarray, icmp_type: np.ndarray, icmp_code: np.ndarray,
          src_port: np.ndarray, dst_port: np.ndarray, src_hi: np.ndarray, src_lo: np.ndarray,
          dst_hi: np.ndarray, dst_lo: np.ndarray, vlan: np.ndarray, vlan_in_key: bool,
          cp4: np.ndarray, cp6: np.ndarray, words: np.ndarray, src_is_a: np.ndarray,
          sport: np.ndarray, dport: np.ndarray, bcast: np.ndarray) -> None:
    """flow_keys in one pass (a compiled loop: the numpy version made a dozen passes)."""
    for i in range(proto.shape[0]):
        p = int(proto[i])
        s, d, one_way = int(src_port[i]), int(dst_port[i]), False
        if p == PROTO_ICMP or p == PROTO_ICMPV6:
            t = min(max(int(icmp_type[i]), 0), 255)
            cp = int(cp4[t]) if p == PROTO_ICMP else int(cp6[t])
            s = t
            one_way = cp < 0
            d = int(icmp_code[i]) if one_way else cp
        elif p != PROTO_TCP and p != PROTO_UDP:
            s = d = 0
        # Source first when (src_hi, src_lo, sport) <= (dst_hi, dst_lo, dport).
        a = src_hi[i] < dst_hi[i] or (src_hi[i] == dst_hi[i] and (
            src_lo[i] < dst_lo[i] or (src_lo[i] == dst_lo[i] and s <= d))) or one_way
        if a:
            words[i, 0], words[i, 1], words[i, 2], words[i, 3] = \
                src_hi[i], src_lo[i], dst_hi[i], dst_lo[i]
            port_a, port_b = s & 0xFFFF, d & 0xFFFF
        else:
            words[i, 0], words[i, 1], words[i, 2], words[i, 3] = \
                dst_hi[i], dst_lo[i], src_hi[i], src_lo[i]
            port_a, port_b = d & 0xFFFF, s & 0xFFFF
        meta = (p & 0xFF) << 48 | port_a << 32 | port_b << 16 | int(one_way) << 15
        if vlan_in_key:
            meta |= (int(vlan[i]) + 1) & 0x1FFF
        words[i, 4] = meta
        src_is_a[i] = a
        sport[i], dport[i] = s, d
        bcast[i] = dst_hi[i] == 0 and dst_lo[i] == _BCAST_LO
