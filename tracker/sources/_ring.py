"""The compiled part of live capture: walking a TPACKET_V3 ring block into a FrameBatch.

``locate_block`` leaves the frames where the kernel wrote them (zero-copy);
``walk_block`` copies them out when they need a VLAN tag put back or a cooked
header made.

Its own module so that ``tracker live`` opens the socket and prints its first
line before numba loads (tracker/sources/live.py imports this on the first block).
"""

from __future__ import annotations

import numpy as np

from tracker.jit import compiled, kernel

TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = 1 << 4, 1 << 6  # linux/if_packet.h
PACKET_OUTGOING = 4  # sll_pkttype of a packet this host sent
ETH_P_8021Q = 0x8100


@kernel
def _u32(b: np.ndarray, p: int) -> int:
    """A little-endian (this host's order) u32; multiplying keeps numba's integers int64."""
    return int(((np.int64(b[p + 3]) * 256 + np.int64(b[p + 2])) * 256
                + np.int64(b[p + 1])) * 256 + np.int64(b[p]))


@kernel
def _u16(b: np.ndarray, p: int) -> int:
    return int(np.int64(b[p + 1]) * 256 + np.int64(b[p]))


@compiled  # slices copy bytes: numba's runtime is needed
def walk_block(ring: np.ndarray, block: int, snaplen: int, loopback: int, cooked: bool,
               out: np.ndarray, start: np.ndarray, caplen: np.ndarray, wire: np.ndarray,
               ts: np.ndarray) -> int:
    """Copy the frames of the ring block at ``block`` into ``out``; returns how many.

    Block header (tpacket_block_desc, host byte order): num_pkts at +12,
    offset_to_first_pkt at +16. Each frame's tpacket3_hdr: tp_next_offset +0,
    tp_sec +4, tp_nsec +8, tp_snaplen +12, tp_len +16, tp_status +20, tp_mac
    +24, tp_vlan_tci +32, tp_vlan_tpid +36; its sockaddr_ll at +48 (protocol at
    +50, ifindex +52, hatype +56, pkttype +58, halen +59, addr +60). ``loopback``
    is the loopback interface's index, whose outgoing copies are left out.
    Cooked (``-i any``): the frame starts at the network header, and a Linux
    cooked (SLL) header is made from the sockaddr_ll, as libpcap does. A VLAN
    tag taken out by the NIC goes back after the two MAC addresses (Ethernet)
    or after the cooked header, whose protocol then becomes the tag's TPID.
    """
    n_pkts = _u32(ring, block + 12)
    p = block + _u32(ring, block + 16)
    n = 0
    at = 0
    for _ in range(n_pkts):
        status = _u32(ring, p + 20)
        if not (ring[p + 58] == PACKET_OUTGOING and _u32(ring, p + 52) == loopback):
            mac = p + _u16(ring, p + 24)
            cap = min(_u32(ring, p + 12), snaplen)
            length = _u32(ring, p + 16)
            tag = (status & TP_STATUS_VLAN_VALID) != 0 and cap >= 12
            start[n] = at
            if cooked:
                at, cap, length = _cooked(ring, p, mac, cap, length, status, out, at)
            elif tag:
                tpid = _u16(ring, p + 36) if status & TP_STATUS_VLAN_TPID_VALID else ETH_P_8021Q
                tci = _u32(ring, p + 32)
                out[at:at + 12] = ring[mac:mac + 12]
                out[at + 12] = tpid >> 8
                out[at + 13] = tpid & 0xFF
                out[at + 14] = (tci >> 8) & 0xFF
                out[at + 15] = tci & 0xFF
                out[at + 16:at + cap + 4] = ring[mac + 12:mac + cap]
                cap += 4
                length += 4
            else:
                out[at:at + cap] = ring[mac:mac + cap]
            if cooked:
                start[n] = at - cap
            caplen[n] = cap
            wire[n] = length
            ts[n] = _u32(ring, p + 4) * 1_000_000_000 + _u32(ring, p + 8)
            if not cooked:
                at += cap
            n += 1
        p += _u32(ring, p)
    return n


@compiled
def _cooked(ring: np.ndarray, p: int, net: int, cap: int, length: int, status: int,
            out: np.ndarray, at: int) -> tuple[int, int, int]:
    """Write one frame at ``out[at]`` with a 16-byte SLL header (pcap-linux.c's cooked
    mode); returns (end offset, captured length, wire length)."""
    tag = (status & TP_STATUS_VLAN_VALID) != 0
    out[at] = 0
    out[at + 1] = ring[p + 58]  # sll_pkttype, big-endian u16
    out[at + 2] = ring[p + 57]  # sll_hatype (host order in sockaddr_ll) as big-endian
    out[at + 3] = ring[p + 56]
    out[at + 4] = 0
    out[at + 5] = ring[p + 59]  # sll_halen
    out[at + 6:at + 14] = ring[p + 60:p + 68]  # sll_addr
    head = 16
    if tag:
        tpid = _u16(ring, p + 36) if status & TP_STATUS_VLAN_TPID_VALID else ETH_P_8021Q
        tci = _u32(ring, p + 32)
        out[at + 14] = tpid >> 8
        out[at + 15] = tpid & 0xFF
        out[at + 16] = (tci >> 8) & 0xFF
        out[at + 17] = tci & 0xFF
        out[at + 18:at + 20] = ring[p + 50:p + 52]  # the protocol, after the tag
        head = 20
    else:
        out[at + 14:at + 16] = ring[p + 50:p + 52]  # sll_protocol, network order already
    out[at + head:at + head + cap] = ring[net:net + cap]
    return at + head + cap, cap + head, length + head


@kernel
def locate_block(ring: np.ndarray, block: int, snaplen: int, loopback: int,
                 start: np.ndarray, caplen: np.ndarray, wire: np.ndarray,
                 ts: np.ndarray) -> int:
    """Zero-copy: where each frame of the block is in the ring itself (absolute offsets);
    -1 when a frame needs its VLAN tag put back, so the block must be copied instead."""
    n_pkts = _u32(ring, block + 12)
    p = block + _u32(ring, block + 16)
    n = 0
    for _ in range(n_pkts):
        if _u32(ring, p + 20) & TP_STATUS_VLAN_VALID:
            return -1
        if not (ring[p + 58] == PACKET_OUTGOING and _u32(ring, p + 52) == loopback):
            start[n] = p + _u16(ring, p + 24)
            caplen[n] = min(_u32(ring, p + 12), snaplen)
            wire[n] = _u32(ring, p + 16)
            ts[n] = _u32(ring, p + 4) * 1_000_000_000 + _u32(ring, p + 8)
            n += 1
        p += _u32(ring, p)
    return n
