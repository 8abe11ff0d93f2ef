"""Plain frames in one compiled pass: the common case, decoded before the layers run.

Most frames of most captures are plain: Ethernet, at most one 802.1Q tag, then
IPv4 (options allowed) that is not a fragment, or IPv6 without extension
headers, then a whole TCP, UDP or ICMP header, or another protocol (whose IP
payload is all payload), every header captured and every length field sound.
For those, the vectorized layers (link.py ... transport.py) spend most of
their time in numpy's per-call costs and in the fancy-indexed gathers and
scatters of each header field. One compiled loop reads each plain frame's headers once
and writes the columns the layers would write; the frames it leaves (anything
else: tunnels' outer headers are plain, fragments, cuts, nonsense, other link
layers and encapsulations) go through the layers as before.

Each function below reads one header, checks what makes it plain, writes its
columns and returns where the next header starts (-1: not plain). A frame
found not plain part way has its columns put back to NONE (``_unwrite``).
The rules are those of the layers, restricted to their sound case; the tests
decode every capture both ways and compare every column.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np

from tracker.decode.encap import ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN
from tracker.decode.ip import (
    EXT_AH,
    EXT_DEST_OPTS,
    EXT_FRAGMENT,
    EXT_HOP_BY_HOP,
    EXT_ROUTING,
    IPV4_FRAGMENT,
    IPV4_MIN_LEN,
    IPV6_LEN,
)
from tracker.decode.transport import ICMP_LEN, TCP_MIN_LEN, UDP_LEN
from tracker.jit import kernel, kernel_inline
from tracker.packets import (
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    V4_MAPPED,
    PacketBatch,
)

ETHERNET_LEN = 14  # IEEE 802.3: destination, source, type
VLAN_TAG_LEN = 4  # IEEE 802.1Q: TCI, inner type

# The PacketBatch columns the plain pass writes, as one argument the compiled code
# takes (a namedtuple of arrays); every other column keeps what decode() made.
Written = namedtuple("Written", [
    "vlan", "l3_offset", "ip_version", "proto", "ip_hdr_len", "ip_len", "src_hi",
    "src_lo", "dst_hi", "dst_lo", "ip_id", "l4_offset", "src_port", "dst_port",
    "tcp_flags", "seq", "ack", "window", "tcp_hdr_len", "udp_len", "payload_len",
    "icmp_type", "icmp_code"])


def written(out: PacketBatch) -> Any:
    """The columns of ``out`` that the plain pass writes."""
    return Written(*(getattr(out, name) for name in Written._fields))


# The NONE value of each written column (one row), made once: what _unwrite puts back.
_NONE = written(PacketBatch.empty(1))


def decode_plain(data: np.ndarray, start: np.ndarray, end: np.ndarray,
                 out: PacketBatch) -> np.ndarray:
    """Decode the plain Ethernet frames (bytes ``start`` to ``end`` of ``data``) into
    ``out``; True for each frame decoded, whose row is then complete but for the
    columns decode() makes from the frame's bytes afterwards."""
    plain = np.zeros(len(start), np.bool_)
    _plain_frames(data, start, end, plain, written(out), _NONE)
    return plain


@kernel
def _plain_frames(data: np.ndarray, start: np.ndarray, end: np.ndarray,
                  plain: np.ndarray, out: Any, none: Any) -> None:
    """decode_plain's loop: ``plain[i]`` for each frame; a frame found not plain part
    way has its row put back to ``none``, as decode() made it, for the layers."""
    for i in range(start.shape[0]):
        plain[i] = _frame(data, start[i], end[i], i, out)
        if not plain[i]:
            _unwrite(out, none, i)


@kernel_inline
def _frame(data: np.ndarray, p: int, end: int, i: int, out: Any) -> bool:
    """One frame, layer by layer; False as soon as a header is not plain."""
    p, ethertype = _ethernet(data, p, end, i, out)
    if p < 0:
        return False
    payload, proto = -1, -1
    if ethertype == ETHERTYPE_IPV4:
        p, payload, proto = _ipv4(data, p, end, i, out)
    elif ethertype == ETHERTYPE_IPV6:
        p, payload, proto = _ipv6(data, p, end, i, out)
    if p < 0:
        return False
    out.l4_offset[i] = p
    if proto == PROTO_TCP:
        return _tcp(data, p, end, payload, i, out)
    if proto == PROTO_UDP:
        return _udp(data, p, end, payload, i, out)
    if (proto == PROTO_ICMP and ethertype == ETHERTYPE_IPV4) or \
            (proto == PROTO_ICMPV6 and ethertype == ETHERTYPE_IPV6):
        return _icmp(data, p, end, payload, i, out)
    out.payload_len[i] = payload  # any other protocol: the IP payload is payload
    return True


@kernel_inline
def _u16(data: np.ndarray, p: int) -> int:
    return (int(data[p]) << 8) | int(data[p + 1])


@kernel_inline
def _u32(data: np.ndarray, p: int) -> int:
    return (_u16(data, p) << 16) | _u16(data, p + 2)


@kernel_inline
def _u64(data: np.ndarray, p: int) -> np.uint64:
    return (np.uint64(_u32(data, p)) << np.uint64(32)) | np.uint64(_u32(data, p + 4))


@kernel_inline
def _ethernet(data: np.ndarray, p: int, end: int, i: int, out: Any) -> tuple[int, int]:
    """Ethernet II and at most one 802.1Q tag: (IP header position, its ethertype)."""
    if end - p < ETHERNET_LEN:
        return -1, 0
    ethertype = _u16(data, p + 12)
    p += ETHERNET_LEN
    if ethertype == ETHERTYPE_VLAN:
        if end - p < VLAN_TAG_LEN:
            return -1, 0
        out.vlan[i] = _u16(data, p) & 0x0FFF
        ethertype = _u16(data, p + 2)
        p += VLAN_TAG_LEN
    if ethertype != ETHERTYPE_IPV4 and ethertype != ETHERTYPE_IPV6:
        return -1, 0
    return p, ethertype


@kernel_inline
def _ipv4(data: np.ndarray, p: int, end: int, i: int, out: Any) -> tuple[int, int, int]:
    """IPv4, not a fragment, the options captured, a total length that holds the
    header (0, a capture before offload, is left to ip.py): (transport position,
    IP payload length, protocol)."""
    if end - p < IPV4_MIN_LEN:
        return -1, 0, 0
    v_hl = int(data[p])
    hdr_len = (v_hl & 0xF) * 4
    total = _u16(data, p + 2)
    if (v_hl >> 4) != 4 or hdr_len < IPV4_MIN_LEN or end - p < hdr_len or total == 0 \
            or total < hdr_len or (_u16(data, p + 6) & IPV4_FRAGMENT) != 0:
        return -1, 0, 0
    proto = int(data[p + 9])
    out.ip_version[i] = 4
    out.l3_offset[i] = p
    out.ip_hdr_len[i] = hdr_len
    out.ip_len[i] = total
    out.ip_id[i] = _u16(data, p + 4)
    out.proto[i] = proto
    out.src_lo[i] = np.uint64(_u32(data, p + 12)) | V4_MAPPED
    out.dst_lo[i] = np.uint64(_u32(data, p + 16)) | V4_MAPPED
    return p + hdr_len, total - hdr_len, proto


@kernel_inline
def _ipv6(data: np.ndarray, p: int, end: int, i: int, out: Any) -> tuple[int, int, int]:
    """IPv6 with a payload length (0, a jumbogram, is left to ip.py) and no extension
    header: (transport position, payload length, next header)."""
    if end - p < IPV6_LEN:
        return -1, 0, 0
    payload = _u16(data, p + 4)
    proto = int(data[p + 6])
    if (data[p] >> 4) != 6 or payload == 0 or proto == EXT_HOP_BY_HOP \
            or proto == EXT_ROUTING or proto == EXT_FRAGMENT or proto == EXT_AH \
            or proto == EXT_DEST_OPTS:
        return -1, 0, 0
    out.ip_version[i] = 6
    out.l3_offset[i] = p
    out.ip_hdr_len[i] = IPV6_LEN
    out.ip_len[i] = payload + IPV6_LEN
    out.proto[i] = proto
    out.src_hi[i] = _u64(data, p + 8)
    out.src_lo[i] = _u64(data, p + 16)
    out.dst_hi[i] = _u64(data, p + 24)
    out.dst_lo[i] = _u64(data, p + 32)
    return p + IPV6_LEN, payload, proto


@kernel_inline
def _tcp(data: np.ndarray, p: int, end: int, payload: int, i: int, out: Any) -> bool:
    """TCP whose header, options included, is captured and inside the IP payload."""
    if end - p < TCP_MIN_LEN:
        return False
    off_flags = _u16(data, p + 12)
    hdr_len = (off_flags >> 10) & 0x3C  # data offset * 4
    if hdr_len < TCP_MIN_LEN or end - p < hdr_len or payload < hdr_len:
        return False
    out.src_port[i] = _u16(data, p)
    out.dst_port[i] = _u16(data, p + 2)
    out.seq[i] = _u32(data, p + 4)
    out.ack[i] = _u32(data, p + 8)
    out.tcp_hdr_len[i] = hdr_len
    out.tcp_flags[i] = off_flags & 0x1FF  # NS and the 8 flags
    out.window[i] = _u16(data, p + 14)
    out.payload_len[i] = payload - hdr_len
    return True


@kernel_inline
def _udp(data: np.ndarray, p: int, end: int, payload: int, i: int, out: Any) -> bool:
    """UDP whose header is captured and inside the IP payload, length field >= 8."""
    if end - p < UDP_LEN or payload < UDP_LEN:
        return False
    length = _u16(data, p + 4)
    if length < UDP_LEN:
        return False
    out.src_port[i] = _u16(data, p)
    out.dst_port[i] = _u16(data, p + 2)
    out.udp_len[i] = length
    out.payload_len[i] = payload - UDP_LEN
    return True


@kernel_inline
def _icmp(data: np.ndarray, p: int, end: int, payload: int, i: int, out: Any) -> bool:
    """ICMP / ICMPv6 whose 8-byte header is captured and inside the IP payload."""
    if end - p < ICMP_LEN or payload < ICMP_LEN:
        return False
    out.icmp_type[i] = data[p]
    out.icmp_code[i] = data[p + 1]
    out.payload_len[i] = payload - ICMP_LEN
    return True


@kernel_inline
def _unwrite(out: Any, none: Any, i: int) -> None:
    """Put every column the pass writes back to NONE for row ``i`` (not plain after all)."""
    out.vlan[i] = none.vlan[0]
    out.l3_offset[i] = none.l3_offset[0]
    out.ip_version[i] = none.ip_version[0]
    out.proto[i] = none.proto[0]
    out.ip_hdr_len[i] = none.ip_hdr_len[0]
    out.ip_len[i] = none.ip_len[0]
    out.src_hi[i] = none.src_hi[0]
    out.src_lo[i] = none.src_lo[0]
    out.dst_hi[i] = none.dst_hi[0]
    out.dst_lo[i] = none.dst_lo[0]
    out.ip_id[i] = none.ip_id[0]
    out.l4_offset[i] = none.l4_offset[0]
    out.src_port[i] = none.src_port[0]
    out.dst_port[i] = none.dst_port[0]
    out.tcp_flags[i] = none.tcp_flags[0]
    out.seq[i] = none.seq[0]
    out.ack[i] = none.ack[0]
    out.window[i] = none.window[0]
    out.tcp_hdr_len[i] = none.tcp_hdr_len[0]
    out.udp_len[i] = none.udp_len[0]
    out.payload_len[i] = none.payload_len[0]
    out.icmp_type[i] = none.icmp_type[0]
    out.icmp_code[i] = none.icmp_code[0]
