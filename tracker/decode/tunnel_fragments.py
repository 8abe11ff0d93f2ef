"""Outer IP datagrams that came in fragments, put back together as bytes, so that the
tunnel inside them is opened: a UDP tunnel (GTP, VXLAN, ...) or an IP tunnel (IP-in-IP,
GRE). Zeek reassembles before it decapsulates (ZEEK-FACTS 4.2 and 6.2; baselines
``core.tunnels.gtp.outer_ip_frag`` and ``core.tunnels.gtp.different_dl_and_ul``, whose
downlink GTP packets are all fragmented).

The flow table goes on counting the fragments of a UDP datagram (flows/fragments.py):
the outer UDP flow gets one packet per datagram, at the fragment that completes it; an
IP tunnel's fragments make no flow (Zeek has no connection of an IP tunnel), the packet
inside takes the completing fragment's row (tunnels.py). The same
rule names that fragment here: a datagram is complete once its data covers ``[0, end)``
without a hole, ``end`` being set by the last fragment (MF=0) and raised by any fragment
reaching beyond it; a fragment that comes after that starts a new datagram; a datagram
still incomplete FRAG_TIMEOUT_NS of packet time after its first fragment is dropped, and
so is the oldest when more than MAX_PENDING_DATAGRAMS wait (the same constants,
tracker/packets.py). Overlapping bytes keep the first copy seen. A fragment not captured
whole, or with a bad IPv4 header checksum, is left out, as the flow table leaves it out.

Each fragment of such a datagram costs a Python step, ~8 us (fragmented datagrams are a
small share of traffic; a capture of nothing else, 400,000 fragments, read in 4.8 s
against 1.4 s without this step). IPv4 and IPv6 datagrams are taken. An IPv6 datagram
is its unfragmentable part (the fixed header and the extension headers before the
Fragment header: hop-by-hop, routing, ...), the Fragment header's Next Header put where
the Fragment header was named, then the data (RFC 8200 section 4.5; Zeek's Frag.cc drops
the Fragment header alike). The extension headers after the Fragment header are data,
and a datagram's later fragments name the first of them, not the tunnel's protocol:
those fragments are taken as well (``candidates``).
"""

from __future__ import annotations

import copy
import struct
from dataclasses import dataclass, field

import numpy as np

from tracker.frames import LINKTYPE_RAW, FrameBatch
from tracker.packets import (
    CHECKSUM_BAD_IP,
    FRAG_TIMEOUT_NS,
    IP_TUNNEL_PROTOS,
    MAX_PENDING_DATAGRAMS,
    PROTO_UDP,
    PacketBatch,
    fragments,
    wrapped_ip_length,
)


@dataclass
class _Datagram:
    """The fragments of one datagram seen so far."""

    start_ns: int  # packet time of its first fragment (the timeout counts from it)
    header: bytes = b""  # the IP header of the offset-0 fragment (IPv6: its
    # unfragmentable part, without the Fragment header: _unfragmentable)
    pieces: list[tuple[int, bytes]] = field(default_factory=list)  # (offset, data), arrival order
    end: int = -1  # the end the last fragment (MF=0) set, -1 until it came

    def complete(self) -> int:
        """The datagram's data length once nothing is missing, else -1."""
        if self.end < 0 or not self.header:
            return -1
        end = max(self.end, max(o + len(d) for o, d in self.pieces))
        covered = 0
        for offset, data in sorted(self.pieces, key=lambda p: p[0]):
            if offset > covered:
                return -1
            covered = max(covered, offset + len(data))
        return end if covered >= end else -1

    def datagram(self, length: int) -> bytes | None:
        """The whole datagram: the first fragment's header, made that of an
        unfragmented datagram of ``length`` data bytes, then the data. Over 65,535
        bytes its length field wraps, as Zeek writes it, and the datagram is cut there;
        None when that leaves nothing after the header (flows/fragments.py drops the
        outer packet then too)."""
        head = bytearray(self.header)
        v6 = head[0] >> 4 == 6
        total = wrapped_ip_length(len(head) + length, v6)
        if total <= len(head):
            return None
        data = bytearray(length)
        for offset, piece in reversed(self.pieces):  # the first copy seen is written last
            data[offset:offset + len(piece)] = piece
        data = data[:total - len(head)]
        if v6:  # the payload length: extension headers and data
            head[4:6] = (total - IPV6_LEN).to_bytes(2, "big")
            return bytes(head) + bytes(data)
        head[2:4] = total.to_bytes(2, "big")
        head[6:8] = b"\x00\x00"  # no flags, offset 0
        head[10:12] = b"\x00\x00"
        head[10:12] = _ipv4_checksum(bytes(head)).to_bytes(2, "big")
        return bytes(head) + bytes(data)


_NO_DATAGRAMS = FrameBatch.from_frames([], linktype=LINKTYPE_RAW)


def _ipv4_checksum(header: bytes) -> int:
    """RFC 791 header checksum (the one's complement sum of 16-bit words)."""
    total = sum(struct.unpack(f">{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def candidates(pb: PacketBatch) -> np.ndarray:
    """The rows taken here: fragments of outer datagrams that may carry a tunnel, UDP or
    an IP tunnel (bool per row). A batch with any needs its frames kept for the tunnels
    (pipeline.made_ready). An IPv6 fragment after the first names the header its data
    starts with: an extension header there (destination options, AH, ...) hides what
    follows it, so such fragments are taken too; the datagram, once whole, shows."""
    later_v6 = (pb.ip_version == 6) & np.isin(pb.proto, _V6_EXTENSIONS)
    taken = np.isin(pb.proto, IP_TUNNEL_PROTOS + (PROTO_UDP,)) | later_v6
    return _outer_fragments(pb) & taken & (pb.checksum != CHECKSUM_BAD_IP)


def ip_tunnel_fragments(pb: PacketBatch) -> np.ndarray:
    """Fragments of outer datagrams of an IP tunnel (IP-in-IP, GRE), IPv4 or IPv6 (bool
    per row)."""
    return _outer_fragments(pb) & np.isin(pb.proto, IP_TUNNEL_PROTOS)


def _outer_fragments(pb: PacketBatch) -> np.ndarray:
    """Fragments of outer datagrams (not inside a tunnel), bool per row."""
    return fragments(pb) & (pb.depth == 0)


IPV6_LEN = 40  # the fixed header (RFC 8200 section 3)
_EXT_FRAGMENT = 44
_EXT_AH = 51
# The extension headers the decoder walks besides the Fragment header (decode/ip.py):
# what a later fragment's data may start with (RFC 8200 section 4.1 orders routing, AH
# and destination options after a Fragment header).
_V6_EXTENSIONS = (0, 43, _EXT_AH, 60)


def _unfragmentable(packet: bytes) -> tuple[bytes, int]:
    """(the unfragmentable part of an IPv6 fragment, the Fragment header's Next Header
    in the field that named the Fragment header; where the fragment's data starts).

    The decoder walked this chain to the Fragment header already (decode/ip.py: a row
    is a fragment only then), so every header here is whole; the sizes are its sizes:
    AH (len + 2) * 4 bytes, the others (len + 1) * 8."""
    named_at, kind, pos = 6, packet[6], IPV6_LEN
    while kind != _EXT_FRAGMENT:
        size = (packet[pos + 1] + 2) * 4 if kind == _EXT_AH else (packet[pos + 1] + 1) * 8
        named_at, kind, pos = pos, packet[pos], pos + size
    head = bytearray(packet[:pos])
    head[named_at] = packet[pos]
    return bytes(head), pos + 8


class TunnelFragments:
    """Reassembles the bytes of fragmented IPv4 datagrams of tunnels, batch after batch."""

    def __init__(self) -> None:
        self._pending: dict[tuple[int, int, int, int, int], _Datagram] = {}
        self._clock = 0

    def memory(self) -> dict[tuple[int, int, int, int, int], _Datagram]:
        """The datagrams still waiting, to carry into the next part of a capture."""
        return copy.deepcopy(self._pending)

    def restore(self, memory: dict[tuple[int, int, int, int, int], _Datagram]) -> None:
        self._pending = copy.deepcopy(memory)

    def completed(self, fb: FrameBatch, pb: PacketBatch) -> tuple[np.ndarray, FrameBatch]:
        """(rows of ``pb`` that complete a datagram, in order; the datagrams as raw-IP
        frames of a FrameBatch, frame i completed by row i, with its time)."""
        rows = np.flatnonzero(candidates(pb))
        if rows.size == 0 and not self._pending:  # a batch of tunnels without fragments
            return rows, _NO_DATAGRAMS
        frame = pb.record[rows] - fb.first_record
        base = pb.l3_offset[rows]  # offsets are positions in fb.data
        hdr, ip_len = pb.ip_hdr_len[rows].astype(np.int64), pb.ip_len[rows]
        # Not captured whole (or nonsense): the flow table leaves it out too.
        whole = (ip_len >= hdr) & (base + ip_len <= fb.start[frame] + fb.caplen[frame])
        rows, base, hdr, ip_len = rows[whole], base[whole], hdr[whole], ip_len[whole]
        data = fb.data
        done: list[int] = []
        grams: list[bytes] = []
        # A Python step per fragment, on plain ints.
        for r, key, ts, offset, more, b, h, n in zip(
                rows.tolist(), zip(pb.src_hi[rows].tolist(), pb.src_lo[rows].tolist(),
                                   pb.dst_hi[rows].tolist(), pb.dst_lo[rows].tolist(),
                                   pb.ip_id[rows].tolist(), strict=True),
                pb.ts_ns[rows].tolist(), pb.frag_offset[rows].tolist(),
                pb.more_fragments[rows].tolist(), base.tolist(), hdr.tolist(), ip_len.tolist(),
                strict=True):
            head, h = _unfragmentable(data[b:b + n].tobytes()) if data[b] >> 4 == 6 \
                else (data[b:b + h].tobytes(), h)
            gram = self._add(key, ts, offset, more, head, data[b + h:b + n])
            if gram is not None:
                done.append(r)
                grams.append(gram)
        if len(pb):
            self._clock = max(self._clock, int(pb.ts_ns.max()))
            self._expire()
        at = np.array(done, dtype=np.int64)
        return at, FrameBatch.from_frames(grams, ts_ns=pb.ts_ns[at].tolist(), linktype=LINKTYPE_RAW)

    def _add(self, key: tuple[int, int, int, int, int], ts: int, offset: int, more: bool,
             header: bytes, data: np.ndarray) -> bytes | None:
        """Take one fragment; the datagram's bytes if it completes one."""
        self._clock = max(self._clock, ts)
        gram = self._pending.get(key)
        if gram is not None and self._late(gram):  # its timeout fired before this fragment
            del self._pending[key]
            gram = None
        if gram is None:
            if len(self._pending) >= MAX_PENDING_DATAGRAMS:  # the oldest goes (dict order)
                del self._pending[next(iter(self._pending))]
            gram = self._pending[key] = _Datagram(ts)
        gram.pieces.append((offset, data.tobytes()))
        if offset == 0 and not gram.header:
            gram.header = header
        if not more:
            gram.end = offset + len(data)
        length = gram.complete()
        if length < 0:
            return None
        del self._pending[key]
        return gram.datagram(length)

    def _late(self, gram: _Datagram) -> bool:
        return self._clock >= gram.start_ns + FRAG_TIMEOUT_NS

    def _expire(self) -> None:
        old = [k for k, g in self._pending.items() if self._late(g)]
        for k in old:
            del self._pending[k]
