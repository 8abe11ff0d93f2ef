"""IP tunnels that stand in for their packet: IP-in-IP and GRE (ZEEK-FACTS 6.1, 6.6).

Zeek makes no connection of an IP-in-IP (IP protocol 4 or 41) or GRE (47) packet: the
packet inside it is processed instead, with the outer packet's time, in the same flow
table. ``flow_rows`` gives the flow table those rows: the decoded batch with each such
packet replaced by the packet it carries, decoded by the same functions (nested tunnels
too, to Zeek's depth of 4). The decoded batch itself keeps the outer headers (what
``read_packets`` shows, as tshark's first layer). A tunnel packet whose inside Zeek would
drop gets status NOT_IP in the flow rows, so it is in no flow:

- IP-in-IP and PPTP (GRE version 1): the inner IP header must describe exactly the
  captured rest of the outer payload (IPTunnel.cc L37-49);
- GRE version 0: the inner packet has what was captured, so an inner packet cut by the
  snaplen is dropped by the IP checks (IPTunnel.cc L71-73);
- GRE with the routing bit, unknown flag bits or a version above 1; PPTP without PPP
  IPv4/IPv6; Aruba's 802.11 payloads (not decoded yet).

The tunnels carried over UDP (VXLAN, Geneve, GTP-U, Teredo, AYIYA), which keep an outer
row of their own, are not decoded here yet; nor is a tunnel packet that came in IP
fragments (the table reassembles after this step, Zeek before).
"""

from __future__ import annotations

import numpy as np

from tracker.frames import LINKTYPE_ETHERNET, LINKTYPE_RAW, FrameBatch
from tracker.packets import PacketBatch, Status

PROTO_IPIP, PROTO_IPV6_IN_IP, PROTO_GRE = 4, 41, 47
TUNNEL_PROTOS = (PROTO_IPIP, PROTO_IPV6_IN_IP, PROTO_GRE)
_IS_TUNNEL = np.zeros(256, np.bool_)
_IS_TUNNEL[list(TUNNEL_PROTOS)] = True
MAX_DEPTH = 4  # Tunnel::max_depth (init-bare L784)

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

# What follows a tunnel header: an IP packet, an Ethernet frame, or nothing Zeek decodes.
INNER_IP, INNER_ETHERNET, INNER_NONE = 0, 1, 2


def flow_rows(fb: FrameBatch, pb: PacketBatch) -> PacketBatch:
    """``pb`` (rows of ``fb``, matched by record) with every IP-in-IP and GRE packet
    replaced by the packet inside it; ``pb`` itself when there are none."""
    out = pb
    for depth in range(MAX_DEPTH + 1):
        # A table lookup: this runs on every batch, tunnels or not (-1, no protocol, is 255).
        at = np.flatnonzero(_IS_TUNNEL[out.proto.astype(np.uint8)])
        at = at[out.status[at] == Status.OK]
        if at.size == 0:
            return out
        if out is pb:
            out = pb.take(np.arange(len(pb)))  # the outer rows stay as they were
        if depth == MAX_DEPTH:  # a fifth level is not opened (exceeded_tunnel_max_depth)
            out.status[at] = Status.NOT_IP
        else:
            _replace(fb, out, at)
    return out


def _u16(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Big-endian 16-bit words at ``pos`` (positions inside ``data``)."""
    return data[pos].astype(np.int64) << 8 | data[pos + 1]


def _replace(fb: FrameBatch, out: PacketBatch, at: np.ndarray) -> None:
    """Decode the inside of the tunnel rows ``at`` of ``out`` into those rows."""
    frame = out.record[at] - fb.first_record
    end = fb.start[frame] + fb.caplen[frame]  # captured end of each frame in fb.data
    payload = out.l3_offset[at] + out.ip_hdr_len[at]
    ip_end = np.minimum(out.l3_offset[at] + out.ip_len[at], end)
    kind = np.full(at.size, INNER_IP, np.int8)
    exact = np.ones(at.size, np.bool_)  # the inner IP length must match what is left
    inner = payload.copy()
    gre = out.proto[at] == PROTO_GRE
    if gre.any():
        inner[gre], kind[gre], exact[gre] = _gre(fb.data, payload[gre], ip_end[gre])
    inner = np.where(inner > ip_end, ip_end, inner)
    put = np.zeros(at.size, np.bool_)  # the inner packet is what the outer payload holds
    for linktype, which in ((LINKTYPE_RAW, INNER_IP), (LINKTYPE_ETHERNET, INNER_ETHERNET)):
        sel = np.flatnonzero(kind == which)
        if sel.size:
            put[sel] = _decode_inner(fb, out, at[sel], inner[sel], ip_end[sel], exact[sel],
                                     linktype)
    lost = at[~put]
    out.status[lost] = Status.NOT_IP  # Zeek drops these: no flow


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
    kind[~ok | aruba | (start > limit)] = INNER_NONE
    return start, kind, exact


def _aruba(ptype: np.ndarray) -> np.ndarray:
    """Aruba's GRE types, which carry 802.11 frames (GRE.cc L112-128)."""
    low = (ptype & 0x000F) == 0
    return (((ptype & 0x8200) == 0x8200) & low) | (((ptype & 0x8300) == 0x8300) & low
                                                   & (ptype <= 0x8370)) | (ptype == 0x9000)


def _decode_inner(fb: FrameBatch, out: PacketBatch, rows: np.ndarray, start: np.ndarray,
                  end: np.ndarray, exact: np.ndarray, linktype: int) -> np.ndarray:
    """Decode the inner packets of ``rows`` (one link type) into them; True where done."""
    from tracker.decode import decode

    inner_fb = FrameBatch(fb.data, start, end - start, end - start, out.ts_ns[rows], linktype,
                          0)
    inner = decode(inner_fb)
    usable = inner.status != Status.NOT_IP
    if linktype == LINKTYPE_RAW:
        # Protocol 4 carries IPv4 and 41 IPv6, whatever the version nibble says.
        want = np.where(out.proto[rows] == PROTO_IPV6_IN_IP, 6, 4)
        usable &= (inner.ip_version == want) | (out.proto[rows] == PROTO_GRE)
    # IP-in-IP and PPTP: the inner packet must fill exactly what the outer one holds.
    usable &= ~exact | (inner.ip_len == end - start)
    keep = ("record", "ts_ns", "wire_len", "caplen")
    for name in PacketBatch.__dataclass_fields__:
        if name not in keep:
            getattr(out, name)[rows[usable]] = getattr(inner, name)[usable]
    return usable
