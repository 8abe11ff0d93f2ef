"""Tunnels as Zeek opens them (ZEEK-FACTS 6): the packets inside make flows of their own.

``Decapsulator.rows`` gives the flow table the rows of a decoded batch with the tunnels
opened, decoded by the same functions as the frames (nested tunnels too, to Zeek's depth
of 4; a VXLAN, Geneve, Teredo or AYIYA row found deeper is marked ``tunnel_refused``, for
Zeek's 'X' on its flow). The decoded batch itself keeps the outer headers (what
``read_packets`` shows, as tshark's first layer).

- IP tunnels: Zeek makes no connection of an IP-in-IP (IP protocol 4 or 41) or GRE (47)
  packet; the packet inside takes its row, with the outer packet's time.
- UDP tunnels (VXLAN, Geneve, GTPv1, Teredo, AYIYA, GRE over UDP; udp_tunnels.py) keep
  their outer row, an ordinary UDP flow; the packet inside is a row of its own right
  after it. The tunnel is chosen by the outer connection's responder port, or, on a port
  without one, by Zeek's payload detection of Teredo and AYIYA.

Every row says how it was carried (PacketBatch.depth, carrier_depth, ip_tunnel, encap),
for the flow table's ``tunnel_parents``. A tunnel packet whose inside Zeek drops gives
no inner row (an IP tunnel's row gets status NOT_IP: it is in no flow):

- IP-in-IP, PPTP (GRE version 1), GTP and Teredo: the inner IP header must describe
  exactly the captured rest of the payload (IPTunnel.cc L37-49, GTPv1.cc L60, Teredo.cc
  L170-187; a Teredo bubble may have bytes after it);
- GRE version 0: the inner packet has what was captured, so an inner packet cut by the
  snaplen is dropped by the IP checks (IPTunnel.cc L71-73); VXLAN, Geneve and AYIYA keep
  a cut inner packet, whose wire length is the outer one's less the headers;
- GRE with the routing bit, unknown flag bits or a version above 1; PPTP without PPP
  IPv4/IPv6; Aruba's 802.11 payloads that are not IP (an A-MSDU's packets each make a
  row of their own, after the first);
- after a protocol violation on an outer UDP connection (VXLAN, Geneve, Teredo, AYIYA:
  a header that does not parse), that connection's later packets are not opened;
- an outer UDP packet with a bad checksum (when checksums are verified);
- GTP right inside GTP (Zeek's "GTP-in-GTP" violation): that packet is plain UDP.

An 802.11 A-MSDU in an 802.11 or radiotap capture is split here too (``link_amsdu``):
not a tunnel, but several packets in one frame, which Zeek's IEEE802_11 analyzer forwards
one by one; they are rows of the frame at depth 0, the first in the frame's own row.

An outer datagram that came in fragments is put back together here first
(tunnel_fragments.py): the packet inside a UDP tunnel follows the fragment that completed
it; the packet inside an IP tunnel takes that fragment's row, and the IP tunnel's
fragments make no flow. Not opened yet: an IPv6 outer datagram in fragments with
extension headers besides its Fragment header.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tracker.decode.encap import ETHERTYPE_IPV4, ETHERTYPE_IPV6, LLC_SNAP
from tracker.decode.link import (
    AMSDU_SUBFRAME,
    IEEE802_11,
    WLAN_LINKS,
    WLAN_QOS,
    is_amsdu,
    wlan_amsdu,
    wlan_header_size,
    wlan_start,
)
from tracker.decode.tunnel_fragments import TunnelFragments, ip_tunnel_fragments
from tracker.decode.udp_tunnels import (
    AYIYA,
    GENEVE,
    GRE_UDP,
    GTP,
    INNER_80211,
    INNER_ETHERNET,
    INNER_IP,
    INNER_NONE,
    NONE,
    TEREDO,
    TUNNEL_PORTS,
    VXLAN,
    Inside,
    ayiya,
    ayiya_detect,
    geneve,
    gtp,
    teredo,
    teredo_detect,
    vxlan,
)
from tracker.frames import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IEEE802_11,
    LINKTYPE_RAW,
    FrameBatch,
)
from tracker.packets import (
    CHECKSUM_BAD,
    IP_TUNNEL_PROTOS,
    PROTO_UDP,
    UDP_HEADER,
    PacketBatch,
    Status,
)

PROTO_IPIP, PROTO_IPV6_IN_IP, PROTO_GRE = TUNNEL_PROTOS = IP_TUNNEL_PROTOS
_IS_TUNNEL = np.zeros(256, np.bool_)
_IS_TUNNEL[list(TUNNEL_PROTOS)] = True
MAX_DEPTH = 4  # Tunnel::max_depth (init-bare L784)
SNAP = bytes([0xAA, 0xAA, 0x03, 0, 0, 0])  # LLC/SNAP with a zero OUI: an ethertype follows

# GRE (RFC 2784, RFC 2890; PPTP's enhanced GRE, RFC 2637 section 4.1).
GRE_CHECKSUM, GRE_ROUTING, GRE_KEY, GRE_SEQ = 0x8000, 0x4000, 0x2000, 0x1000
GRE_ACK = 0x0080  # version 1 only: an acknowledgment number follows
GRE_RESERVED = 0x0078  # flag bits Zeek rejects (unknown_gre_flags)
GRE_VERSION = 0x0007
GRE_TEB = 0x6558  # transparent Ethernet bridging: an Ethernet frame follows
GRE_ERSPAN_1_2 = 0x88BE  # ERSPAN type I (no sequence bit) and II (sequence bit set)
GRE_ERSPAN_3 = 0x22EB
GRE_PPP = 0x880B  # PPTP
ERSPAN_2_LEN, ERSPAN_3_LEN, ERSPAN_3_PLATFORM = 8, 12, 8
PPP_IPV4, PPP_IPV6 = 0x0021, 0x0057
PPTP_PPP_LEN = 4  # address, control, protocol (Zeek reads no compressed forms)

# The tunnels after whose violation Zeek opens nothing more of that outer connection
# (VXLAN.cc L20-21, Geneve.cc, Teredo.cc L149-150, AYIYA.cc); GTP goes on (GTPv1.cc).
_STOP_AFTER_VIOLATION = (VXLAN, GENEVE, TEREDO, AYIYA)
# The tunnels whose inner packet keeps the outer wire length less the headers
# (IPTunnel.cc L179-182): a packet cut by the snaplen is still counted.
_CUT_KEPT = (VXLAN, GENEVE, AYIYA)
_PARSERS = {VXLAN: vxlan, GENEVE: geneve, GTP: gtp, TEREDO: teredo, AYIYA: ayiya}

_M1 = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing, as the flow table's key hash


def flow_rows(fb: FrameBatch, pb: PacketBatch, tunnels: Decapsulator | None = None
              ) -> PacketBatch:
    """``pb`` (rows of ``fb``, matched by record) with the tunnels opened; ``pb`` itself
    when there are none. ``tunnels`` carries Zeek's per-connection tunnel state from
    batch to batch (a fresh one knows Zeek's default ports)."""
    return (tunnels or Decapsulator()).rows(fb, pb)


class Decapsulator:
    """Opens the tunnels of batch after batch, remembering what Zeek remembers per outer
    UDP connection: its responder (when the ports do not say it) and a violation.

    ``likely_server_udp`` are the flow table's likely-server UDP ports, which decide the
    responder, and with it the tunnel, of a new outer connection (ZEEK-FACTS 2.3, 6.1).
    With ``verify_checksums`` an outer UDP packet with a bad checksum is not opened (it
    counts nowhere: UDP.cc L117-134); without, the checksum column is not looked at.
    """

    def __init__(self, likely_server_udp: frozenset[int] = frozenset(TUNNEL_PORTS),
                 verify_checksums: bool = True) -> None:
        self._verify = verify_checksums
        self._lsp = np.zeros(65536, np.bool_)
        self._lsp[list(likely_server_udp)] = True
        self._analyzer = np.zeros(65536, np.int8)
        for port, code in TUNNEL_PORTS.items():
            self._analyzer[port] = code
        self._responder: dict[int, int] = {}  # outer key -> responder port, when needed
        self._violated: set[int] = set()  # outer key and tunnel of violated connections
        self._fragments = TunnelFragments()

    def memory(self) -> tuple[dict[int, int], set[int], Any]:
        """What it remembers of outer connections, to carry into the next part of a capture:
        responders, violations and the fragments of outer datagrams still incomplete."""
        return dict(self._responder), set(self._violated), self._fragments.memory()

    def restore(self, memory: tuple[dict[int, int], set[int], Any]) -> None:
        self._responder, self._violated = dict(memory[0]), set(memory[1])
        self._fragments.restore(memory[2])

    def rows(self, fb: FrameBatch, pb: PacketBatch) -> PacketBatch:
        done, datagrams = self._fragments.completed(fb, pb)
        out = self._opened(fb, link_amsdu(fb, pb, self._verify))
        held = ip_tunnel_fragments(out)
        if held.any():  # Zeek opens the reassembled datagram: its fragments make no flow
            out = out.take(np.arange(len(out))) if out is pb else out
            out.status[held] = Status.NOT_IP
        if done.size:
            out = self._in_datagrams(out, pb, done, datagrams)
        return out

    def _in_datagrams(self, out: PacketBatch, pb: PacketBatch, done: np.ndarray,
                      datagrams: FrameBatch) -> PacketBatch:
        """``out`` with the packets inside the reassembled ``datagrams`` (datagram i
        completed by row ``done[i]`` of ``pb``) at their completing fragment, which
        carries them (its record, time and lengths): right after it when it is a UDP
        tunnel's, which is a flow of its own; in its row when it is an IP tunnel's, as
        an unfragmented IP tunnel's packet takes its row (_open_ip), others after it."""
        from tracker.decode import decode

        opened = self._opened(datagrams, decode(datagrams, checksums=self._verify))
        inner = opened.take(np.flatnonzero(opened.depth > 0))
        if len(inner) == 0:
            return out
        which = done[inner.record - datagrams.first_record]
        for name in ("record", "ts_ns", "wire_len", "caplen"):
            getattr(inner, name)[:] = getattr(pb, name)[which]
        # The completing fragment's row: the first of its record (rows it carries follow).
        at = np.searchsorted(out.record, inner.record, side="left")
        first = np.r_[True, inner.record[1:] != inner.record[:-1]]
        put = first & _IS_TUNNEL[pb.proto[which].astype(np.uint8)]
        for name in PacketBatch.__dataclass_fields__:
            if name not in ("record", "ts_ns", "wire_len", "caplen"):
                getattr(out, name)[at[put]] = getattr(inner, name)[put]
        return _insert(out, at[~put], inner.take(np.flatnonzero(~put)))

    def _opened(self, fb: FrameBatch, pb: PacketBatch) -> PacketBatch:
        out = pb
        in_gtp = np.zeros(len(pb), np.bool_)  # per row of out: GTP carried it
        for level in range(MAX_DEPTH + 1):
            # The decoder marked the few rows that may carry a tunnel (decode/payload.py).
            maybe = np.flatnonzero(out.tunnel_hint)
            maybe = maybe[out.depth[maybe] == level] if level else maybe
            ip = maybe[_IS_TUNNEL[out.proto[maybe].astype(np.uint8)]]
            udp = self._udp_tunnels(fb, out, maybe[out.proto[maybe] == PROTO_UDP])
            # GTP inside GTP is a violation, not a tunnel (gtpv1-analyzer.pac L660-665): the
            # packet is plain UDP (Zeek's core.tunnels.gtp.non_recursive).
            plain = (udp[1] == GTP) & in_gtp[udp[0]]
            if plain.any():
                udp = (udp[0][~plain], udp[1][~plain], udp[2][~plain], udp[3][~plain])
            if ip.size == 0 and udp[0].size == 0:
                return out
            if out is pb and (ip.size or level == MAX_DEPTH):  # the outer rows stay as they were
                out = pb.take(np.arange(len(pb)))
            if level == MAX_DEPTH:  # a fifth level is not opened (exceeded_tunnel_max_depth)
                out.status[ip] = Status.NOT_IP
                out.tunnel_refused[self._refused(out, *udp[:2])] = True
                return out
            if ip.size:
                extra, after = _open_ip(fb, out, ip, self._verify)
                if len(extra):
                    out = _insert(out, after, extra)
                    udp = (udp[0] + np.searchsorted(after, udp[0], side="left"), *udp[1:])
            in_gtp = np.zeros(len(out), np.bool_)
            if udp[0].size:
                out, in_gtp = self._open_udp(fb, out, *udp)
        return out

    def _udp_tunnels(self, fb: FrameBatch, out: PacketBatch, udp: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The UDP rows that carry a tunnel: (rows, tunnel code, payload start, end)."""
        udp = udp[out.src_port[udp] >= 0]
        if self._verify:
            udp = udp[out.checksum[udp] != CHECKSUM_BAD]
        sp, dp = out.src_port[udp], out.dst_port[udp]
        by_src, by_dst = self._analyzer[sp], self._analyzer[dp]
        code = np.where(self._responder_is_src(out, udp, by_src, by_dst), by_src, by_dst)
        pos, limit = _udp_payload(fb, out, udp)
        # Payload detection where the responder port has no tunnel (these rows passed the
        # decoder's hint, which ran the same detection up to the frame's end).
        none = np.flatnonzero(code == NONE)
        if none.size:
            tered = teredo_detect(fb.data, pos[none], limit[none])
            code[none[tered]] = TEREDO
            rest = none[~tered]
            code[rest[ayiya_detect(fb.data, pos[rest], limit[rest])]] = AYIYA
        keep = code != NONE
        return udp[keep], code[keep], pos[keep], limit[keep]

    def _responder_is_src(self, out: PacketBatch, rows: np.ndarray, by_src: np.ndarray,
                          by_dst: np.ndarray) -> np.ndarray:
        """Whether each packet's source is its connection's responder (UDP.cc L54-57:
        a new connection flips when only its source port is a likely server port; the
        ports say it for every packet then). Where both or neither port are, the first
        packet's destination is the responder: remembered per connection, and needed
        only when a tunnel port is involved."""
        sp, dp = out.src_port[rows], out.dst_port[rows]
        ls, ld = self._lsp[sp], self._lsp[dp]
        out_src = ls & ~ld
        ask = np.flatnonzero((ls == ld) & (sp != dp) & ((by_src != NONE) | (by_dst != NONE)))
        if ask.size:
            # One Python step per connection (its first packet here names the responder
            # unless an earlier batch did), not per packet.
            keys, first, which = np.unique(_outer_keys(out, rows[ask]), return_index=True,
                                           return_inverse=True)
            resp = np.array([self._responder.setdefault(k, d) for k, d in
                             zip(keys.tolist(), dp[ask[first]].tolist(), strict=True)])
            out_src[ask] = sp[ask] == resp[which]
        return out_src

    def _open_udp(self, fb: FrameBatch, out: PacketBatch, rows: np.ndarray, code: np.ndarray,
                  pos: np.ndarray, limit: np.ndarray) -> tuple[PacketBatch, np.ndarray]:
        """``out`` with the packet inside each UDP tunnel row in a row after it, and
        which of its rows a GTP tunnel carries (bool per row)."""
        ins = _headers(fb.data, code, pos, limit)
        cut_kept = np.isin(code, _CUT_KEPT)
        inner, usable = _inside(fb, out, rows, ins, limit, cut_kept, self._verify)
        rest = limit - ins.start
        whole = inner.ip_len == rest
        bubble = (inner.proto == 59) & (inner.ip_len == 40)  # Teredo.cc L170-187
        teredo_len = whole | (bubble & (inner.ip_len < rest))
        ins.violation |= (code == TEREDO) & (ins.kind != INNER_NONE) & ~teredo_len
        usable &= ~((code == GTP) & ~whole)  # GTP: a violation that stops nothing
        usable &= ~ins.violation & ~self._blocked(out, rows, code, ins.violation)
        keep = np.flatnonzero(usable)
        if keep.size == 0:
            return out, np.zeros(len(out), np.bool_)
        at = rows[keep]
        new = inner.take(keep)
        for name in ("record", "ts_ns", "wire_len", "caplen"):
            getattr(new, name)[:] = getattr(out, name)[at]
        new.depth[:] = out.depth[at] + 1
        gre = code[keep] == GRE_UDP  # GRE over UDP: the parent is an IP tunnel
        pair = _pair_keys(out, at)
        level = np.where(gre, pair, _outer_keys(out, at))
        new.carrier_depth[:] = np.where(gre, -1, out.depth[at].astype(np.int8))
        new.ip_tunnel[:] = np.where(gre, pair, np.uint64(0))
        new.encap[:] = _mix(out.encap[at], level)
        in_gtp = np.zeros(len(out) + len(new), np.bool_)
        in_gtp[at + 1 + np.arange(len(new))] = code[keep] == GTP  # where _insert puts them
        return _insert(out, at, new), in_gtp

    def _refused(self, out: PacketBatch, rows: np.ndarray, code: np.ndarray) -> np.ndarray:
        """The UDP tunnel ``rows`` whose analyzer Zeek runs and stops at the depth limit,
        marking the carrying connection with 'X' (VXLAN.cc L23-27, Geneve.cc L63-67,
        Teredo.cc L152-156, AYIYA.cc L22-26): not GTP, nor GRE over UDP (IPTunnel.cc
        L25-28: a weird alone), nor a connection whose tunnel was violated before (that
        check comes first)."""
        stops = np.isin(code, _STOP_AFTER_VIOLATION)
        keys = _violation_keys(out, rows[stops], code[stops])
        return rows[stops][~np.isin(keys, self._known_violations())]

    def _known_violations(self) -> np.ndarray:
        return np.fromiter(self._violated, np.uint64, len(self._violated))

    def _blocked(self, out: PacketBatch, rows: np.ndarray, code: np.ndarray,
                 violation: np.ndarray) -> np.ndarray:
        """Rows of connections whose tunnel saw a violation before (in an earlier batch,
        or earlier in this one); remembers this batch's violations."""
        stops = np.flatnonzero(np.isin(code, _STOP_AFTER_VIOLATION))
        blocked = np.zeros(rows.size, np.bool_)
        if not violation[stops].any() and not self._violated:
            return blocked
        keys = _violation_keys(out, rows[stops], code[stops])
        here = np.isin(keys, self._known_violations())
        # A violation earlier in the batch on the same connection: count them per key,
        # in batch order (a stable sort by key keeps it).
        order = np.argsort(keys, kind="stable")
        sk, sv = keys[order], violation[stops][order].astype(np.int64)
        first = np.r_[True, sk[1:] != sk[:-1]]
        before = np.cumsum(sv) - sv  # violations before each row, over all keys
        before -= np.maximum.accumulate(np.where(first, before, 0))  # ... within its key
        here[order] |= before > 0
        blocked[stops] = here
        self._violated.update(keys[violation[stops]].tolist())
        return blocked


def _violation_keys(out: PacketBatch, rows: np.ndarray, code: np.ndarray) -> np.ndarray:
    """What a violation is remembered by: the outer connection of each row and its tunnel."""
    return _mix(_outer_keys(out, rows), code.astype(np.uint64))


def _udp_payload(fb: FrameBatch, out: PacketBatch, rows: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of the UDP payload of ``rows`` in the frame bytes, as captured."""
    frame = out.record[rows] - fb.first_record
    end = fb.start[frame] + fb.caplen[frame]
    udp_end = out.l4_offset[rows] + np.maximum(out.udp_len[rows], UDP_HEADER)
    ip_end = out.l3_offset[rows] + out.ip_len[rows]
    return out.l4_offset[rows] + UDP_HEADER, np.minimum(np.minimum(udp_end, ip_end), end)


def _headers(data: np.ndarray, code: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> Inside:
    """The tunnel header of each row, by its tunnel code."""
    ins = Inside.of(pos.copy(), INNER_NONE)
    for which, parse in _PARSERS.items():
        sel = np.flatnonzero(code == which)
        if sel.size:
            part = parse(data, pos[sel], limit[sel])
            for name in ("start", "kind", "version", "exact", "violation"):
                getattr(ins, name)[sel] = getattr(part, name)
    sel = np.flatnonzero(code == GRE_UDP)
    if sel.size:
        ins.start[sel], ins.kind[sel], ins.exact[sel] = _gre(data, pos[sel], limit[sel])
    return ins


def _mix(h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """One step of a 64-bit hash over uint64 columns (order matters)."""
    h = (np.asarray(h, np.uint64) ^ np.asarray(x, np.uint64)) * _M1
    return h ^ (h >> np.uint64(29))


def _ends(out: PacketBatch, rows: np.ndarray
          ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """The two ends (address high, low, port) of each row, the smaller first."""
    a = (out.src_hi[rows], out.src_lo[rows], out.src_port[rows].astype(np.uint64))
    b = (out.dst_hi[rows], out.dst_lo[rows], out.dst_port[rows].astype(np.uint64))
    swap = (a[0] > b[0]) | ((a[0] == b[0]) & ((a[1] > b[1]) | ((a[1] == b[1]) & (a[2] > b[2]))))
    lo = tuple(np.where(swap, y, x) for x, y in zip(a, b, strict=True))
    hi = tuple(np.where(swap, x, y) for x, y in zip(a, b, strict=True))
    return lo, hi


def _outer_keys(out: PacketBatch, rows: np.ndarray) -> np.ndarray:
    """A hash of each row's connection, the same both ways (a UDP tunnel level is its
    outer connection, TunnelEncapsulation.h L81-102)."""
    lo, hi = _ends(out, rows)
    h = np.full(rows.size, np.uint64(PROTO_UDP))
    for col in (*lo, *hi):
        h = _mix(h, col)
    return h


def _pair_keys(out: PacketBatch, rows: np.ndarray) -> np.ndarray:
    """A hash of each row's unordered address pair (an IP tunnel, IPTunnel.cc L54-69);
    never 0."""
    lo, hi = _ends(out, rows.astype(np.int64))
    h = np.full(rows.size, np.uint64(PROTO_GRE))
    for col in (lo[0], lo[1], hi[0], hi[1]):
        h = _mix(h, col)
    return h | np.uint64(1)


def _insert(out: PacketBatch, after: np.ndarray, new: PacketBatch) -> PacketBatch:
    """``out`` with row i of ``new`` right after row ``after[i]`` (sorted)."""
    n, m = len(out), len(new)
    new_at = after + 1 + np.arange(m)  # each inserted row moves the later ones down
    old_at = np.arange(n) + np.searchsorted(after, np.arange(n), side="left")
    merged = PacketBatch.empty(0)
    for name in PacketBatch.__dataclass_fields__:
        column = getattr(out, name)
        both = np.empty(n + m, column.dtype)
        both[old_at] = column
        both[new_at] = getattr(new, name)
        setattr(merged, name, both)
    return merged


def _open_ip(fb: FrameBatch, out: PacketBatch, at: np.ndarray, checksums: bool
             ) -> tuple[PacketBatch, np.ndarray]:
    """Decode the inside of the IP tunnel rows ``at`` of ``out`` into those rows; the
    packets after the first of an A-MSDU (several in one 802.11 frame, inside Aruba's
    GRE) come back as rows to insert after the row given for each (sorted)."""
    frame = out.record[at] - fb.first_record
    end = fb.start[frame] + fb.caplen[frame]  # captured end of each frame in fb.data
    payload = out.l3_offset[at] + out.ip_hdr_len[at]
    ip_end = np.minimum(out.l3_offset[at] + out.ip_len[at], end)
    ins = Inside.of(payload.copy(), INNER_IP)
    ins.exact[:] = True  # IP-in-IP: the inner IP length must match what is left
    # Protocol 4 carries IPv4 and 41 IPv6, whatever the version nibble says.
    ins.version[:] = np.where(out.proto[at] == PROTO_IPV6_IN_IP, 6, 4)
    gre = np.flatnonzero(out.proto[at] == PROTO_GRE)
    if gre.size:
        ins.start[gre], ins.kind[gre], ins.exact[gre] = _gre(fb.data, payload[gre], ip_end[gre])
        ins.version[gre] = 0
    ins.start = np.minimum(ins.start, ip_end)
    end = ip_end.copy()
    more = _amsdu(fb.data, ins, end)
    inner, usable = _inside(fb, out, at, ins, end, np.zeros(at.size, np.bool_), checksums)
    usable &= ~ins.exact | (inner.ip_len == ip_end - ins.start)
    pair = _pair_keys(out, at)
    encap = _mix(out.encap[at], pair)
    depth = out.depth[at] + 1
    levels = (depth, pair, encap)
    extra = _subframes(fb, out, at, more, levels, checksums)  # before the rows change
    put = at[usable]
    keep = ("record", "ts_ns", "wire_len", "caplen")
    for name in PacketBatch.__dataclass_fields__:
        if name not in keep:
            getattr(out, name)[put] = getattr(inner, name)[usable]
    out.depth[put], out.ip_tunnel[put], out.encap[put] = depth[usable], pair[usable], \
        encap[usable]
    out.carrier_depth[put] = -1
    out.status[at[~usable]] = Status.NOT_IP  # Zeek drops these: no flow
    return extra


def amsdu_packets(data: np.ndarray, pos: int, stop: int) -> list[tuple[int, int]] | None:
    """(start, end) of the packets of the 802.11 frame at data[pos:stop] when it is an
    A-MSDU (IEEE802_11.cc L86-163), else None; (-1, -1) for a packet that is not IP.
    Subframes are DA, SA, a length, then LLC/SNAP and the packet, each followed by
    ``length % 4`` bytes of padding (Zeek's rule) where there is room. Zeek stops at a
    truncated subframe and at one that is neither IP nor ARP (no analyzer takes it)."""
    if stop - pos < IEEE802_11.itemsize:
        return None
    fc0, fc1 = np.array([data[pos]], np.int64), np.array([data[pos + 1]], np.int64)
    size = int(wlan_header_size(fc0, fc1)[0])
    if stop - pos < size or not is_amsdu(fc0, fc1, np.array([data[pos + size - WLAN_QOS]]))[0]:
        return None  # not an A-MSDU of data: the link decoder says what it is
    found: list[tuple[int, int]] = []
    at = pos + size
    while stop - at >= AMSDU_SUBFRAME:
        length = int(data[at + 12]) << 8 | int(data[at + 13])
        llc = at + AMSDU_SUBFRAME
        if stop - at < length + AMSDU_SUBFRAME or length < LLC_SNAP.itemsize \
                or bytes(data[llc:llc + len(SNAP)]) != SNAP:
            break
        ethertype = int(data[llc + 6]) << 8 | int(data[llc + 7])
        if ethertype in (ETHERTYPE_IPV4, ETHERTYPE_IPV6):
            found.append((llc + LLC_SNAP.itemsize, llc + length))
        elif ethertype in _WLAN_ARP:
            found.append((-1, -1))
        else:
            break
        at = llc + length
        at += length % 4 if stop - at >= length % 4 else 0
    return found


_WLAN_ARP = (0x0806, 0x8035)  # ARP and RARP, the other ethertypes Zeek's 802.11 forwards


def _amsdu(data: np.ndarray, ins: Inside, end: np.ndarray) -> list[tuple[int, int, int]]:
    """802.11 A-MSDUs among the rows (amsdu_packets): each row's first packet becomes
    its inside (``ins`` and ``end`` rewritten), and the others come back as (row, start,
    end). A Python step per A-MSDU frame (rare: Aruba's GRE)."""
    more: list[tuple[int, int, int]] = []
    for k in np.flatnonzero(ins.kind == INNER_80211).tolist():
        packets = amsdu_packets(data, int(ins.start[k]), int(end[k]))
        if packets is None:
            continue
        found = [p for p in packets if p[0] >= 0]
        if not found:
            ins.kind[k] = INNER_NONE
            continue
        ins.start[k], end[k] = found[0]
        ins.kind[k], ins.version[k] = INNER_IP, 0
        more += [(k, a, b) for a, b in found[1:]]
    return more


def link_amsdu(fb: FrameBatch, pb: PacketBatch, checksums: bool) -> PacketBatch:
    """``pb`` with the packets of the 802.11 A-MSDU frames of an 802.11 or radiotap
    capture after the first (amsdu_packets; Zeek's IEEE802_11 analyzer forwards each as
    a packet of the frame, with its time) as rows after the frame's, which the decoder
    made of the first (link.py ieee802_11) and marked with a tunnel hint
    (decode/__init__.py). A Python step per such frame."""
    if fb.linktype not in WLAN_LINKS:
        return pb
    rows = np.flatnonzero(pb.tunnel_hint & (pb.depth == 0))
    frame = pb.record[rows] - fb.first_record
    start = fb.start[frame].astype(np.int64)
    end = start + fb.caplen[frame]
    head = wlan_start(fb.data, start, end, fb.linktype)
    more: list[tuple[int, int, int]] = []
    for k in np.flatnonzero(wlan_amsdu(fb.data, start, end, fb.linktype)).tolist():
        packets = amsdu_packets(fb.data, int(head[k]), int(end[k])) or []
        more += [(k, a, b) for a, b in packets[1:] if a >= 0]
    zero = np.zeros(rows.size, np.int64)
    new, after = _subframes(fb, pb, rows, more, (zero, zero.astype(np.uint64),
                                                 zero.astype(np.uint64)), checksums)
    return _insert(pb, after, new) if len(new) else pb


def _subframes(fb: FrameBatch, out: PacketBatch, at: np.ndarray,
               more: list[tuple[int, int, int]],
               levels: tuple[np.ndarray, np.ndarray, np.ndarray], checksums: bool
               ) -> tuple[PacketBatch, np.ndarray]:
    """The rows of the A-MSDU packets after each frame's first (``more``: row k of
    ``at``, start, end), with the frame's record, time and lengths and the tunnel level
    of the packets inside row k (``levels``: depth, IP tunnel, stack), and the rows of
    ``out`` they follow."""
    from tracker.decode import decode

    if not more:
        return PacketBatch.empty(0), np.zeros(0, np.int64)
    k = np.array([m[0] for m in more], np.int64)
    start = np.array([m[1] for m in more], np.int64)
    caplen = np.array([m[2] for m in more], np.int64) - start
    row = at[k]
    new = decode(FrameBatch(fb.data, start, caplen, caplen, out.ts_ns[row], LINKTYPE_RAW, 0),
                 checksums=checksums)
    for name in ("record", "ts_ns", "wire_len", "caplen"):
        getattr(new, name)[:] = getattr(out, name)[row]
    new.depth[:], new.ip_tunnel[:], new.encap[:] = (c[k] for c in levels)
    new.carrier_depth[:] = -1
    return new, row


def _u16(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Big-endian 16-bit words at ``pos`` (positions inside ``data``)."""
    return data[pos].astype(np.int64) << 8 | data[pos + 1]


def _gre(data: np.ndarray, pos: np.ndarray, limit: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The GRE headers at ``pos``: (where the inside starts, INNER_*, exact-length rule).

    GRE.cc L13-201: 4 bytes plus 4 for each of the checksum, key and sequence bits (and
    PPTP's acknowledgment bit); version 0 carries Ethernet (0x6558), ERSPAN I/II/III or,
    for any other type, an IP packet; version 1 (PPTP) carries PPP with IPv4 or IPv6.
    """
    n = pos.size
    ok = pos + 4 <= limit
    flags = np.where(ok, _u16(data, np.minimum(pos, limit - 4).clip(0)), 0)
    ptype = np.where(ok, _u16(data, np.minimum(pos + 2, limit - 2).clip(0)), 0)
    version = flags & GRE_VERSION
    size = 4 + 4 * (((flags & GRE_CHECKSUM) != 0).astype(np.int64)
                    + ((flags & GRE_KEY) != 0) + ((flags & GRE_SEQ) != 0)
                    + ((version == 1) & ((flags & GRE_ACK) != 0)))
    ok &= (version <= 1) & ((flags & GRE_ROUTING) == 0) & ((flags & GRE_RESERVED) == 0)
    start = pos + size
    kind = np.full(n, INNER_IP, np.int8)
    exact = version == 1
    v0 = ok & (version == 0)
    erspan1 = v0 & (ptype == GRE_ERSPAN_1_2) & ((flags & GRE_SEQ) == 0)
    erspan2 = v0 & (ptype == GRE_ERSPAN_1_2) & ((flags & GRE_SEQ) != 0)
    erspan3 = v0 & (ptype == GRE_ERSPAN_3)
    ethernet = (v0 & (ptype == GRE_TEB)) | erspan1 | erspan2 | erspan3
    kind[ethernet] = INNER_ETHERNET
    start = start + np.where(erspan2, ERSPAN_2_LEN, 0)
    if erspan3.any():  # + the platform sub-header when the last byte's O bit is set
        last = np.minimum(start + ERSPAN_3_LEN - 1, limit - 1).clip(0)
        start = start + np.where(erspan3, ERSPAN_3_LEN
                                 + ERSPAN_3_PLATFORM * (data[last] & 1), 0)
    aruba = v0 & _aruba(ptype)
    pptp = ok & (version == 1)
    if pptp.any():
        proto = _u16(data, np.minimum(start + 2, limit - 2).clip(0))
        good = (ptype == GRE_PPP) & np.isin(proto, (PPP_IPV4, PPP_IPV6)) \
            & (start + PPTP_PPP_LEN <= limit)
        ok &= ~pptp | good
        start = start + np.where(pptp, PPTP_PPP_LEN, 0)
    kind[aruba] = INNER_80211
    kind[~ok | (start > limit)] = INNER_NONE
    return start, kind, exact


def _aruba(ptype: np.ndarray) -> np.ndarray:
    """Aruba's GRE types, which carry 802.11 frames (GRE.cc L112-128)."""
    low = (ptype & 0x000F) == 0
    return (((ptype & 0x8200) == 0x8200) & low) | (((ptype & 0x8300) == 0x8300) & low
                                                   & (ptype <= 0x8370)) | (ptype == 0x9000)


def _inside(fb: FrameBatch, out: PacketBatch, rows: np.ndarray, ins: Inside, end: np.ndarray,
            cut_kept: np.ndarray, checksums: bool) -> tuple[PacketBatch, np.ndarray]:
    """The packets inside ``rows`` decoded (one row each, fields as decode gives them,
    checksums verified when they count) and whether each is one Zeek goes on with
    (before any exact-length rule)."""
    from tracker.decode import decode

    inner = PacketBatch.empty(rows.size)
    usable = np.zeros(rows.size, np.bool_)
    start = np.minimum(ins.start, end)
    for linktype, which in ((LINKTYPE_RAW, INNER_IP), (LINKTYPE_ETHERNET, INNER_ETHERNET),
                            (LINKTYPE_IEEE802_11, INNER_80211)):
        sel = np.flatnonzero(ins.kind == which)
        if sel.size == 0:
            continue
        caplen = end[sel] - start[sel]
        frame = out.record[rows[sel]] - fb.first_record
        missing = np.where(cut_kept[sel], fb.wire_len[frame] - fb.caplen[frame], 0)
        got = decode(FrameBatch(fb.data, start[sel], caplen, caplen + missing,
                                out.ts_ns[rows[sel]], linktype, 0), checksums=checksums)
        ok = got.status != Status.NOT_IP
        if linktype == LINKTYPE_RAW:
            want = ins.version[sel]
            ok &= (want == 0) | (got.ip_version == want)
        usable[sel] = ok
        for name in PacketBatch.__dataclass_fields__:
            getattr(inner, name)[sel] = getattr(got, name)
    return inner, usable
