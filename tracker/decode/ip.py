"""IPv4 and IPv6 headers, and the IPv6 extension header chain.

Each decoder writes the IP columns of its frames and returns the frames that
go on to a transport header as a ``Segment``. Lengths come from the header
length fields, never from the captured length; a capture that ends inside the
header gives TRUNCATED with the fields before the cut, a nonsense field that
was captured gives MALFORMED (it wins over TRUNCATED).
"""

from __future__ import annotations

import numpy as np

from tracker.decode._bytes import (
    ByteView,
    Cursor,
    Rows,
    clear_cut,
    column,
    header,
    put,
    set_status,
    subset,
)
from tracker.decode.transport import KIND_TCP, KIND_V4, KIND_V6, Segment
from tracker.packets import V4_MAPPED, PacketBatch, Status

# Header tables: (field, numpy type) in wire order; the comments give byte offsets.
IPV4 = header(  # RFC 791 section 3.1
    ("v_hl", "u1"),  # 0: version (4 bits) | IHL, the header length in 4-byte words (4)
    ("tos", "u1"),  # 1: DSCP | ECN
    ("len", ">u2"),  # 2-3: total length
    ("id", ">u2"),  # 4-5: identification
    ("off", ">u2"),  # 6-7: flags (reserved, DF, MF) | fragment offset in 8-byte units
    ("ttl", "u1"),  # 8
    ("p", "u1"),  # 9: protocol
    ("sum", ">u2"),  # 10-11: header checksum (not checked)
    ("src", ">u4"),  # 12-15
    ("dst", ">u4"),  # 16-19; options follow, up to IHL * 4
)
IPV6 = header(  # RFC 8200 section 3
    ("vfc", ">u4"),  # 0-3: version (4 bits) | traffic class (8) | flow label (20)
    ("plen", ">u2"),  # 4-5: payload length (extension headers included)
    ("nxt", "u1"),  # 6: next header
    ("hlim", "u1"),  # 7: hop limit
    ("src_hi", ">u8"),  # 8-15
    ("src_lo", ">u8"),  # 16-23
    ("dst_hi", ">u8"),  # 24-31
    ("dst_lo", ">u8"),  # 32-39
)
IPV6_EXTENSION = header(  # RFC 8200 sections 4.3-4.6, RFC 4302 section 2: how each starts
    ("nxt", "u1"),  # 0: next header
    ("len", "u1"),  # 1: length, in 8-byte units not counting the first 8 (AH: 4-byte, -2)
)
IPV6_FRAGMENT = header(  # RFC 8200 section 4.5
    ("nxt", "u1"),  # 0: next header
    ("reserved", "u1"),  # 1
    ("off_m", ">u2"),  # 2-3: offset in 8-byte units (13 bits) | reserved (2) | M (1)
    ("id", ">u4"),  # 4-7: identification
)

IPV4_MIN_LEN = 20  # IHL 5
IPV4_MF = 0x2000  # flags bit 2: more fragments
IPV4_OFFSET = 0x1FFF  # fragment offset, in 8-byte units
IPV4_FRAGMENT = IPV4_MF | IPV4_OFFSET  # a fragment: MF or an offset (Zeek IP.h)

IPV6_LEN = 40
NEXT_NONE = 59  # RFC 8200 section 4.7: no next header
# Extension headers walked to the transport header (RFC 8200 section 4.1, RFC 4302).
EXT_HOP_BY_HOP = 0
EXT_ROUTING = 43
EXT_FRAGMENT = 44
EXT_AH = 51
EXT_DEST_OPTS = 60
_IS_EXTENSION = np.zeros(256, np.bool_)
_IS_EXTENSION[[EXT_HOP_BY_HOP, EXT_ROUTING, EXT_FRAGMENT, EXT_AH, EXT_DEST_OPTS]] = True
MAX_EXT_HEADERS = 16
IPV6_NEXT_END = 7  # the fixed header's Next Header field ends at byte 7 (RFC 8200 section 3)

# Nonsense first bytes: a version other than 4, or an IHL below 5 (20 bytes).
_BAD_V_HL = np.ones(256, np.bool_)
_BAD_V_HL[0x45:0x50] = False

# (column, byte end): a field is kept only when its last byte was captured.
_IPV4_CUT = (("ip_version", 1), ("l3_offset", 1), ("ip_hdr_len", 1), ("ip_len", 4),
             ("ip_id", 6), ("frag_offset", 8), ("more_fragments", 8), ("proto", 10),
             ("src_lo", 16), ("dst_lo", 20))
_IPV6_CUT = (("ip_version", 1), ("l3_offset", 1), ("ip_len", 6), ("src_hi", 16),
             ("src_lo", 24), ("dst_hi", 32), ("dst_lo", 40))


def ipv4(bv: ByteView, cur: Cursor, out: PacketBatch) -> Segment:
    """IPv4: the IP columns; the frames go on to the header after the options."""
    p, r = cur.pos, cur.rows
    head = bv.records(p, IPV4)
    v_hl = column(head, "v_hl")
    hdr_len = (v_hl & 0xF) * 4
    total = column(head, "len")
    proto = column(head, "p")
    put(out.ip_version, r, 4)
    put(out.l3_offset, r, p)
    put(out.ip_hdr_len, r, hdr_len)
    put(out.ip_len, r, total)
    put(out.ip_id, r, head["id"])
    put(out.proto, r, proto)
    put(out.src_lo, r, head["src"].astype(np.uint64) | V4_MAPPED)
    put(out.dst_lo, r, head["dst"].astype(np.uint64) | V4_MAPPED)
    avail = cur.avail()
    payload = _payload_length(out, cur, total, hdr_len)
    segment = Segment(Cursor(r, p + hdr_len, cur.end), payload, KIND_V4[proto], None)
    off = column(head, "off")
    fragment = (off & IPV4_FRAGMENT) != 0
    trouble = (avail < hdr_len) | (payload < 0) | _BAD_V_HL[v_hl]
    if not (trouble.any() or fragment.any()):
        return segment  # frag_offset 0 and more_fragments False are already there
    put(out.frag_offset, r, (off & IPV4_OFFSET) * 8)
    put(out.more_fragments, r, (off & IPV4_MF) != 0)
    bad = ((avail >= 1) & _BAD_V_HL[v_hl]) | ((avail >= 4) & (payload < 0))
    cut = avail < np.maximum(hdr_len, IPV4_MIN_LEN)
    clear_cut(out, r, avail, _IPV4_CUT)
    segment.fragment = _fragment_status(out, r, bad, cut, fragment)
    later = segment.fragment & ((off & IPV4_OFFSET) != 0)  # no transport header in it
    put(out.payload_len, r, payload, later)  # all of it is transport payload
    return segment.select(~(bad | cut | later))


def _payload_length(out: PacketBatch, cur: Cursor, total: np.ndarray,
                    hdr_len: np.ndarray) -> np.ndarray:
    """IPv4 payload length: total length - header length, or, when the total length is 0,
    every byte of the frame after the header.

    Captures taken before TCP segmentation offload (TSO) hold a total length of 0: the
    NIC fills it in later. Zeek then takes the transport from all the bytes after the
    header, padding included, while counting the header's 0 in ip_bytes, and without -C
    drops the packet (ZEEK-FACTS 9.2). ``ip_len`` keeps the 0, and the flow table drops
    such packets when it verifies checksums. The frame's wire length is used, so that a
    snaplen cut reads as a cut (TRUNCATED), not as a short segment.
    """
    payload = total - hdr_len
    tso = total == 0
    if not tso.any():
        return payload
    return np.where(tso, np.maximum(_wire_after(out, cur) - hdr_len, 0), payload)


def _wire_after(out: PacketBatch, cur: Cursor) -> np.ndarray:
    """Bytes of each frame on the wire from the current header on (its wire length, not
    what the snaplen kept)."""
    start = cur.end - out.caplen[cur.rows]
    return out.wire_len[cur.rows] - (cur.pos - start)


def _fragment_status(out: PacketBatch, rows: Rows, bad: np.ndarray, cut: np.ndarray,
                     fragment: np.ndarray) -> np.ndarray:
    """TRUNCATED, MALFORMED (wins) or FRAGMENT; returns the sound fragments."""
    fragment = fragment & ~(bad | cut)
    set_status(out, rows, cut, Status.TRUNCATED)
    set_status(out, rows, bad, Status.MALFORMED)
    set_status(out, rows, fragment, Status.FRAGMENT)
    return fragment


def ipv6(bv: ByteView, cur: Cursor, out: PacketBatch) -> Segment:
    """IPv6: the IP columns, then the extension header chain to the transport header.

    A payload length of 0 (a jumbogram, RFC 2675, or a capture before offload) is
    read as Zeek reads it (ZEEK-FACTS 9.4): ``ip_len`` 40, what follows is the rest
    of the frame; TCP there is settled after its header is read (tcp_without_length).
    """
    p, r = cur.pos, cur.rows
    head = bv.records(p, IPV6)
    plen = column(head, "plen")
    next_header = column(head, "nxt")
    put(out.ip_version, r, 6)
    put(out.l3_offset, r, p)
    put(out.ip_len, r, plen + IPV6_LEN)
    for name in ("src_hi", "src_lo", "dst_hi", "dst_lo"):
        put(getattr(out, name), r, head[name])
    avail = cur.avail()
    bad = (avail >= 1) & ((column(head, "vfc") >> 28) != 6)
    cut = avail < IPV6_LEN
    plen = _zero_payload_length(out, cur, plen)
    chain = Cursor(r, p + IPV6_LEN, cur.end)
    if (bad | cut).any():
        clear_cut(out, r, avail, _IPV6_CUT)
        # A transport's number captured before the cut is kept, as IPv4's protocol is.
        put(out.proto, r, next_header, cut & ~bad & (avail >= IPV6_NEXT_END)
            & ~_IS_EXTENSION[next_header])
        set_status(out, r, cut, Status.TRUNCATED)
        set_status(out, r, bad, Status.MALFORMED)
        chain = chain.select(~(bad | cut))
        next_header, plen = next_header[~(bad | cut)], plen[~(bad | cut)]
    if _IS_EXTENSION[next_header].any():
        segment = _extension_chain(bv, chain, next_header, chain.pos + plen, out)
    else:
        put(out.proto, chain.rows, next_header)
        put(out.ip_hdr_len, chain.rows, IPV6_LEN)
        segment = Segment(chain, plen, KIND_V6[next_header], None)
    return segment


def tcp_without_length(segment: Segment, out: PacketBatch) -> None:
    """TCP under an IPv6 payload length of 0, its header read (decode_transport): Zeek
    keys a connection on the frame's bytes (TCP.cc InitConnKey), then takes the segment's
    length from the payload length, 0, so the header does not fit (ExtractTCP_Header,
    truncated_header): the connection is made or found, nothing is counted. The row
    keeps its header's fields and is MALFORMED, which the flow table takes so
    (flows/table.py tcp_header_cut)."""
    r = segment.cur.rows
    zero = out.ip_len[r] == IPV6_LEN
    if not zero.any():  # the common case: one comparison
        return
    zero &= (segment.kind == KIND_TCP) & (out.status[r] == Status.OK)
    set_status(out, r, zero, Status.MALFORMED)
    put(out.payload_len, r, 0, zero)


def _zero_payload_length(out: PacketBatch, cur: Cursor, plen: np.ndarray) -> np.ndarray:
    """The payload length, or for a payload length of 0 the frame's bytes after the fixed
    header (by its wire length, so that a snaplen cut reads as a cut)."""
    zero = plen == 0
    if not zero.any():
        return plen
    return np.where(zero, np.maximum(_wire_after(out, cur) - IPV6_LEN, 0), plen)


def extension_header(bv: ByteView, cur: Cursor, kind: np.ndarray,
                     limit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One extension header of the kinds in ``kind``: (size, next header, status).

    Size: hop-by-hop, routing, destination options (len + 1) * 8; fragment 8;
    AH (RFC 4302 section 2.2) (len + 2) * 4. Status 0 where the walk may go
    on: the whole header is captured and inside the payload length.
    """
    head = bv.records(cur.pos, IPV6_EXTENSION)
    length = column(head, "len")
    is_fragment = kind == EXT_FRAGMENT
    size = np.where(is_fragment, IPV6_FRAGMENT.itemsize,
                    np.where(kind == EXT_AH, (length + 2) * 4, (length + 1) * 8))
    avail = cur.avail()
    cut = avail < size  # the whole header: the transport header is after it
    past_end = (cur.pos + size > limit) & (is_fragment | (avail >= 2))
    status = np.where(past_end, int(Status.MALFORMED), np.where(cut, int(Status.TRUNCATED), 0))
    return size, column(head, "nxt"), status


def fragment_header(bv: ByteView, cur: Cursor, out: PacketBatch) -> np.ndarray:
    """IPv6 fragment header: the fragment columns; True for non-first fragments."""
    head = bv.records(cur.pos, IPV6_FRAGMENT)
    off_m = column(head, "off_m")
    offset = off_m & 0xFFF8  # 13-bit offset in 8-byte units, already times 8
    put(out.frag_offset, cur.rows, offset)
    put(out.more_fragments, cur.rows, (off_m & 1) == 1)
    put(out.ip_id, cur.rows, head["id"])
    put(out.status, cur.rows, int(Status.FRAGMENT))
    return offset != 0


def _extension_chain(bv: ByteView, cur: Cursor, kind: np.ndarray, limit: np.ndarray,
                     out: PacketBatch) -> Segment:
    """Walk IPv6 extension headers, one per pass over the frames still in them.

    ``cur`` is just past the fixed header, ``kind`` its next header, ``limit``
    the end of the packet by its payload length. The walk stops at a transport
    header, at a non-first fragment, past ``MAX_EXT_HEADERS`` (MALFORMED) or
    at a header running past ``limit`` (MALFORMED).
    """
    pos, kind = cur.pos.copy(), kind.copy()
    status = np.zeros(len(cur), np.int64)
    later = np.zeros(len(cur), np.bool_)
    fragment = np.zeros(len(cur), np.bool_)
    for depth in range(MAX_EXT_HEADERS + 1):
        at = np.flatnonzero(_IS_EXTENSION[kind] & (status == 0) & ~later)
        if at.size == 0:
            break
        if depth == MAX_EXT_HEADERS:
            status[at] = Status.MALFORMED
            break
        sub = Cursor(subset(cur.rows, at), pos[at], cur.end[at])
        size, next_header, status[at] = extension_header(bv, sub, kind[at], limit[at])
        frag = (kind[at] == EXT_FRAGMENT) & (status[at] == 0)
        if frag.any():
            later[at[frag]] = fragment_header(bv, sub.select(frag), out)
            fragment[at[frag]] = True
        ok = status[at] == 0
        pos[at[ok]] += size[ok]
        kind[at[ok]] = next_header[ok]
    return _chain_end(Cursor(cur.rows, pos, cur.end), cur.pos, kind, limit - pos,
                      status, later, fragment, out)


def _chain_end(cur: Cursor, after_fixed: np.ndarray, proto: np.ndarray, payload: np.ndarray,
               status: np.ndarray, later: np.ndarray, fragment: np.ndarray,
               out: PacketBatch) -> Segment:
    """Write the chain's results; the frames that reach a transport header go on."""
    r = cur.rows
    stopped = status != 0
    put(out.status, r, status, stopped)
    done = ~stopped
    put(out.proto, r, proto, done)
    put(out.ip_hdr_len, r, cur.pos - after_fixed + IPV6_LEN, done)
    put(out.payload_len, r, payload, done & later)  # all of it is transport payload
    segment = Segment(cur, payload, KIND_V6[proto], fragment)
    return segment.select(done & ~later)
