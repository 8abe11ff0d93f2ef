"""Build PacketBatch rows by hand for the flow-table tests (no decoder needed).

A segment is written as in a tcpdump line::

    seg(0.0, "10.0.0.1:1099 > 10.0.0.2:80", "S", seq=100)
    seg(0.1, "10.0.0.2:80 > 10.0.0.1:1099", "SA", seq=500, ack=101)

flags: S SYN, A ACK, F FIN, R RST, P PSH. ``length`` is the TCP payload.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np

from tracker.packets import V4_MAPPED, PacketBatch

FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}
NS = 1_000_000_000


@dataclass
class Seg:
    ts: float
    src: str
    sport: int
    dst: str
    dport: int
    proto: int = 6
    flags: int = 0
    seq: int = 0
    ack: int = 0
    length: int = 0
    window: int = 1024
    vlan: int = -1
    icmp_type: int = -1
    icmp_code: int = -1


def _split(ends: str) -> tuple[str, int, str, int]:
    a, b = (x.strip() for x in ends.split(">"))
    ha, pa = a.rsplit(":", 1)
    hb, pb = b.rsplit(":", 1)
    return ha, int(pa), hb, int(pb)


def seg(ts: float, ends: str, flags: str = "A", *, seq: int = 0, ack: int = 0, length: int = 0,
        window: int = 1024, vlan: int = -1) -> Seg:
    """One TCP segment."""
    src, sport, dst, dport = _split(ends)
    bits = sum(FLAG_BITS[f] for f in flags)
    return Seg(ts, src, sport, dst, dport, 6, bits, seq, ack, length, window, vlan)


def udp(ts: float, ends: str, length: int = 10, *, vlan: int = -1) -> Seg:
    """One UDP datagram with ``length`` payload bytes."""
    src, sport, dst, dport = _split(ends)
    return Seg(ts, src, sport, dst, dport, 17, length=length, vlan=vlan)


def icmp(ts: float, src: str, dst: str, itype: int, code: int = 0, length: int = 56) -> Seg:
    """One ICMP (v4) message with ``length`` bytes after the 8-byte header."""
    return Seg(ts, src, -1, dst, -1, 1, length=length, icmp_type=itype, icmp_code=code)


def _addr(text: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(text)
    if ip.version == 4:
        return 0, int(V4_MAPPED) | int(ip)
    v = int(ip)
    return v >> 64, v & ((1 << 64) - 1)


def batch(segs: list[Seg], *, first_record: int = 0) -> PacketBatch:
    """A PacketBatch with one OK row per segment."""
    n = len(segs)
    pb = PacketBatch.empty(n)
    pb.record[:] = np.arange(first_record, first_record + n)
    for i, s in enumerate(segs):
        v6 = ":" in s.src
        hdr = 40 if v6 else 20
        l4 = {6: 20, 17: 8, 1: 8}.get(s.proto, 0)
        pb.ts_ns[i] = round(s.ts * NS)
        pb.ip_version[i] = 6 if v6 else 4
        pb.proto[i] = s.proto
        pb.ip_hdr_len[i] = hdr
        pb.ip_len[i] = hdr + l4 + s.length
        pb.wire_len[i] = pb.caplen[i] = 14 + pb.ip_len[i]
        pb.ip_caplen[i] = pb.ip_len[i]
        pb.src_hi[i], pb.src_lo[i] = _addr(s.src)
        pb.dst_hi[i], pb.dst_lo[i] = _addr(s.dst)
        pb.vlan[i] = s.vlan
        pb.payload_len[i] = s.length
        if s.proto in (6, 17):
            pb.src_port[i], pb.dst_port[i] = s.sport, s.dport
        if s.proto == 6:
            pb.tcp_flags[i], pb.seq[i], pb.ack[i] = s.flags, s.seq, s.ack
            pb.window[i], pb.tcp_hdr_len[i] = s.window, 20
        elif s.proto == 17:
            pb.udp_len[i] = 8 + s.length
        elif s.proto == 1:
            pb.icmp_type[i], pb.icmp_code[i] = s.icmp_type, s.icmp_code
    return pb
