"""A compact packet program: fuzz bytes -> flow options and Ethernet frames for the flow table.

Random bytes almost never make a valid IP/TCP header, so the flow-table fuzzer
does not mutate frames: it mutates this program, in which every byte means
something the flow table cares about (who talks to whom, flags, sequence
steps, fragments, time steps), and the frames are built from it with correct
lengths and checksums (unless the program asks for a bad one).

Layout (all fields one byte unless noted)::

    header  4 bytes: options, batch size, snaplen cut, time base
    packet 12 bytes each:
      0  kind: bits 0-2 what (TCP4 UDP4 ICMP4 TCP6 UDP6 ICMP6 raw4 raw6),
         bit 3 swap direction, bits 4-5 fragment (none, first, middle, last),
         bit 6 VLAN tag, bit 7 bad transport checksum
      1  hosts: low nibble source host, high nibble destination host (16 hosts)
      2  source port selector, 3 destination port selector (PORTS, else 40000 + n)
      4  TCP flags low 8 bits / ICMP type / raw: protocol or next header
      5  TCP NS flag (bit 0) / ICMP code / raw: filler byte of the payload
      6-7  signed sequence step from the sender's next sequence number
      8  signed ack step from the peer's next sequence number; fragments: offset / 8
      9  payload length / 8
      10-11  signed time step in ms; 32767 NaT, -32768 the largest time, 32766 +11.6 days

GUARDS keep the fuzzer away from inputs that are known and settled, so that it
looks for new ones; the regression tests ``lift`` them one by one: the session
timer is never 0 ("session-timer-zero": a hang once, now an OptionError of
FlowOptions, tests/fuzz/regressions/README.md).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tracker.flows import FlowOptions
from tracker.frames import LINKTYPE_ETHERNET, NAT_NS, FrameBatch

HEADER, PACKET = 4, 12
MAX_PACKETS = 256  # bounds the work of one input
LIM = (1 << 63) - 1  # largest int64 nanoseconds (2262-04-11)
CAPS = (1, 2, 3, 4, 8, 16, 64)  # max_open_flows for option bits 0-2 = 1..7
# Ports that change the flow table's decisions: Zeek's likely server ports
# (80, 53, 443, 22, 123), long-inactivity ones (21, 22, 23), 0 and 65535.
PORTS = (0, 80, 443, 53, 22, 21, 23, 123, 5353, 65535, 1024, 8080, 67, 68, 5060, 3389)
# Time bases: now-ish (2023), the epoch, before 1970, and near the int64 end (2262).
TIME_BASES = (1_700_000_000 * 10**9, 0, -(10**18), LIM - 10**12)
MS = 10**6
PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMPV6 = 6, 17, 1, 58
ETH_V4, ETH_V6, ETH_VLAN = 0x0800, 0x86DD, 0x8100  # IEEE 802 ethertypes


@dataclass
class Program:
    """What the bytes say: options, batch size, and the frames with their times."""

    options: FlowOptions
    batch: int  # frames per FrameBatch, 0 = all in one
    frames: list[bytes]
    wire: list[int]
    ts: list[int]


GUARDS = frozenset({"session-timer-zero"})


def options_of(b0: int, *, lift: frozenset[str] = frozenset()) -> FlowOptions:
    """Flow options from the first header byte (see the module docstring)."""
    kw: dict[str, object] = {"max_open_flows": CAPS[(b0 & 7) - 1] if b0 & 7 else None,
                             "vlan_in_key": bool(b0 & 8), "verify_checksums": bool(b0 & 16)}
    if b0 & 0x80:  # every timer at zero: flows end at their next packet
        short = 0.0
    elif b0 & 0x20:
        short = 1.0
    else:
        short = -1.0
    if short >= 0:
        for name in ("tcp_inactivity", "udp_inactivity", "icmp_inactivity", "other_inactivity",
                     "tcp_attempt_delay", "tcp_close_delay", "tcp_syn_timeout",
                     "tcp_connection_linger", "long_inactivity"):
            kw[name] = short
        # Never 0: a zero session timer re-arms Zeek's expire check at the same
        # time forever (known hang, regressions/flows/hang-session-timer-zero).
        zero_ok = "session-timer-zero" in lift
        kw["tcp_session_timer"] = short if zero_ok else max(short, 1e-9)
    if b0 & 0x40:
        kw["active_timeout"] = 2.0
    return FlowOptions(**kw)  # type: ignore[arg-type]


def parse(data: bytes, *, lift: frozenset[str] = frozenset()) -> Program:
    """Turn fuzz bytes into a Program; any bytes make one (short ones make no frames)."""
    head = data[:HEADER].ljust(HEADER, b"\0")
    prog = Program(options_of(head[0], lift=lift), head[1], [], [], [])
    builder = _Builder(snap=head[2], ts=TIME_BASES[head[3] % len(TIME_BASES)])
    body = data[HEADER:HEADER + PACKET * MAX_PACKETS]
    for at in range(0, len(body) - PACKET + 1, PACKET):
        frame, ts = builder.packet(body[at:at + PACKET])
        prog.wire.append(len(frame))
        prog.frames.append(frame[:14 + 20 + 4 * builder.snap] if builder.snap else frame)
        prog.ts.append(ts)
    return prog


def batches(prog: Program, size: int) -> list[FrameBatch]:
    """The frames as FrameBatches of ``size`` (0: one batch), records numbered from 0."""
    n = len(prog.frames)
    step = size or max(n, 1)
    return [FrameBatch.from_frames(prog.frames[lo:lo + step], linktype=LINKTYPE_ETHERNET,
                                   ts_ns=prog.ts[lo:lo + step], wire_len=prog.wire[lo:lo + step],
                                   first_record=lo)
            for lo in range(0, n, step)]


def _s16(b: bytes) -> int:
    return int(struct.unpack(">h", b)[0])


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class _Builder:
    """Builds one frame per packet record, remembering each sender's next sequence number."""

    def __init__(self, snap: int, ts: int) -> None:
        self.snap, self.ts = snap, ts
        self.next_seq: dict[tuple[int, int, int, int], int] = {}
        self.ip_id = 0

    def _time(self, step: int) -> int:
        if step == 32767:
            return NAT_NS
        if step == -32768:
            self.ts = LIM
        elif step == 32766:
            self.ts += 10**15
        else:
            self.ts += step * MS
        self.ts = max(-LIM, min(LIM, self.ts))
        return self.ts

    def packet(self, p: bytes) -> tuple[bytes, int]:
        """One frame and its time from a 12-byte packet record."""
        kind, what = p[0], p[0] & 7
        src, dst = p[1] & 15, p[1] >> 4
        sport, dport = (PORTS[x] if x < len(PORTS) else 40000 + x for x in (p[2], p[3]))
        if kind & 8:
            src, dst, sport, dport = dst, src, dport, sport
        v6 = what in (3, 4, 5, 7)
        payload_len = 8 * p[9]
        proto = (PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_ICMPV6,
                 p[4], p[4])[what]
        frag = (kind >> 4) & 3
        offset = 8 * p[8] if frag >= 2 else 0
        if frag >= 2 or what >= 6:  # a later fragment carries only data
            l4 = bytes([p[5]]) * payload_len
        else:
            l4 = self._transport(proto, v6, (src, sport, dst, dport), p, payload_len)
        ip = _ipv6 if v6 else _ipv4
        packet = ip(src, dst, proto, l4, frag, offset, self._next_id())
        eth = ETH_V6 if v6 else ETH_V4
        tag = struct.pack(">HH", ETH_VLAN, src) if kind & 0x40 else b""
        frame = bytes(range(12)) + tag + struct.pack(">H", eth) + packet
        return frame.ljust(60, b"\0"), self._time(_s16(p[10:12]))

    def _next_id(self) -> int:
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        return self.ip_id

    def _transport(self, proto: int, v6: bool, key: tuple[int, int, int, int], p: bytes,
                   payload_len: int) -> bytes:
        """A TCP, UDP or ICMP header and zero payload, checksummed over the pseudo header."""
        src, sport, dst, dport = key
        body = bytes(payload_len)
        if proto == PROTO_TCP:
            flags = p[4] | (p[5] & 1) << 8
            seq = (self.next_seq.get(key, 1000 * (sport + 1)) + _s16(p[6:8])) & 0xFFFFFFFF
            peer = self.next_seq.get((dst, dport, src, sport), 0)
            ack = (peer + (p[8] - 256 if p[8] > 127 else p[8])) & 0xFFFFFFFF
            self.next_seq[key] = seq + payload_len + (flags & 2 > 0) + (flags & 1 > 0)
            hdr = struct.pack(">HHIIHHHH", sport, dport, seq, ack, 0x5000 | flags, 65535, 0, 0)
            csum_at = 16
        elif proto == PROTO_UDP:
            hdr = struct.pack(">HHHH", sport, dport, 8 + payload_len, 0)
            csum_at = 6
        else:
            hdr = struct.pack(">BBHHH", p[4], p[5], 0, sport, dport)
            csum_at = 2
        seg = hdr + body
        if proto == PROTO_ICMP:  # ICMPv4 has no pseudo header (RFC 792)
            total = checksum(seg)
        else:
            total = checksum(_pseudo(src, dst, proto, len(seg), v6) + seg)
        total ^= 0xFFFF if p[0] & 0x80 else 0  # the program asked for a bad checksum
        return seg[:csum_at] + struct.pack(">H", total) + seg[csum_at + 2:]


def _addr(host: int, v6: bool) -> bytes:
    """Host n: 192.0.2.n+1 or 2001:db8::n+1 (documentation ranges, RFC 5737 / RFC 3849)."""
    if v6:
        return bytes.fromhex("20010db8") + bytes(11) + bytes([host + 1])
    return bytes([192, 0, 2, host + 1])


def _pseudo(src: int, dst: int, proto: int, length: int, v6: bool) -> bytes:
    """The pseudo header of the transport checksum (RFC 793 / RFC 8200 section 8.1)."""
    if v6:
        return _addr(src, True) + _addr(dst, True) + struct.pack(">IxxxB", length, proto)
    return _addr(src, False) + _addr(dst, False) + struct.pack(">xBH", proto, length)


def _ipv4(src: int, dst: int, proto: int, l4: bytes, frag: int, offset: int, ident: int
          ) -> bytes:
    """An IPv4 header (RFC 791) with a correct header checksum, then ``l4``."""
    flags = (0x2000 if frag in (1, 2) else 0) | (offset // 8)
    hdr = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident, flags, 64, proto, 0,
                      _addr(src, False), _addr(dst, False))
    return hdr[:10] + struct.pack(">H", checksum(hdr)) + hdr[12:] + l4


def _ipv6(src: int, dst: int, proto: int, l4: bytes, frag: int, offset: int, ident: int
          ) -> bytes:
    """An IPv6 header (RFC 8200), with a Fragment header (section 4.5) when ``frag``."""
    ext, nxt = b"", proto
    if frag:
        ext = struct.pack(">BBHI", proto, 0, offset | (1 if frag in (1, 2) else 0), ident)
        nxt = 44
    body = ext + l4
    return (struct.pack(">IHBB", 0x60000000, len(body), nxt, 64) + _addr(src, True)
            + _addr(dst, True) + body)
