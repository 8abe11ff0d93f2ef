"""IPv4 and IPv6 headers, and the IPv6 extension header chain.

Each decoder writes the IP columns of its frames and returns the frames that
go on to a transport header as a ``Segment``. Lengths come from the header
length fields, never from the captured length; a capture that ends inside the
header gives TRUNCATED with the fields before the cut, a nonsense field that
was captured gives MALFORMED (it wins over TRUNCATED).
"""

from __future__ import annotations

import numpy as np

from tracker.decode._bytes import ByteView, Cursor, Rows, clear_cut, put, set_status, subset
from tracker.decode.transport import KIND_V4, KIND_V6, Segment
from tracker.packets import V4_MAPPED, PacketBatch, Status

# IPv4, RFC 791 section 3.1.
IPV4_MIN_LEN = 20  # IHL 5
IPV4_MF = 0x2000  # flags bit 2: more fragments
IPV4_OFFSET = 0x1FFF  # fragment offset, in 8-byte units
IPV4_FRAGMENT = IPV4_MF | IPV4_OFFSET  # a fragment: MF or an offset (Zeek IP.h)

# IPv6, RFC 8200 section 3.
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
FRAGMENT_LEN = 8  # RFC 8200 section 4.5
MAX_EXT_HEADERS = 16

_V4_MAPPED = int(V4_MAPPED)

# (column, byte end): a field is kept only when its last byte was captured.
_IPV4_CUT = (("ip_version", 1), ("l3_offset", 1), ("ip_hdr_len", 1), ("ip_len", 4),
             ("ip_id", 6), ("frag_offset", 8), ("more_fragments", 8), ("proto", 10),
             ("src_lo", 16), ("dst_lo", 20))
_IPV6_CUT = (("ip_version", 1), ("l3_offset", 1), ("ip_len", 6), ("src_hi", 16),
             ("src_lo", 24), ("dst_hi", 32), ("dst_lo", 40))


def ipv4(bv: ByteView, cur: Cursor, out: PacketBatch) -> Segment:
    """IPv4: 0 version|IHL, 2-3 total length, 4-5 id, 6-7 flags|offset, 9 protocol,
    12-15 source, 16-19 destination; options up to IHL*4."""
    p, r = cur.pos, cur.rows
    head = bv.header(p, IPV4_MIN_LEN)
    w0 = head.u64(0)  # bytes 0-7
    w1 = head.u64(8)  # bytes 8-15: TTL, protocol, checksum, source
    ver_ihl = (w0 >> 56) & 0xFF
    hdr_len = (ver_ihl & 0xF) * 4
    total = (w0 >> 32) & 0xFFFF
    proto = (w1 >> 48) & 0xFF
    put(out.ip_version, r, 4)
    put(out.l3_offset, r, p)
    put(out.ip_hdr_len, r, hdr_len)
    put(out.ip_len, r, total)
    put(out.ip_id, r, (w0 >> 16) & 0xFFFF)
    put(out.frag_offset, r, (w0 & IPV4_OFFSET) * 8)
    put(out.more_fragments, r, (w0 & IPV4_MF) != 0)
    put(out.proto, r, proto)
    put(out.src_lo, r, (w1 & 0xFFFFFFFF) | _V4_MAPPED)
    put(out.dst_lo, r, head.u32(16) | _V4_MAPPED)
    avail = cur.avail()
    payload = total - hdr_len
    segment = Segment(Cursor(r, p + hdr_len, cur.end), payload, KIND_V4[proto], None)
    fragment = (w0 & IPV4_FRAGMENT) != 0
    # version 4 and IHL >= 5 <=> 0x45 <= ver_ihl <= 0x4F
    trouble = (avail < hdr_len) | (payload < 0) | (np.abs(ver_ihl - 0x4A) > 5)
    if not (trouble.any() or fragment.any()):
        return segment
    bad = ((avail >= 1) & (np.abs(ver_ihl - 0x4A) > 5)) | ((avail >= 4) & (payload < 0))
    cut = avail < np.maximum(hdr_len, IPV4_MIN_LEN)
    clear_cut(out, r, avail, _IPV4_CUT)
    segment.fragment = _fragment_status(out, r, bad, cut, fragment)
    later = segment.fragment & ((w0 & IPV4_OFFSET) != 0)  # no transport header in it
    put(out.payload_len, r, payload, later)  # all of it is transport payload
    return segment.select(~(bad | cut | later))


def _fragment_status(out: PacketBatch, rows: Rows, bad: np.ndarray, cut: np.ndarray,
                     fragment: np.ndarray) -> np.ndarray:
    """TRUNCATED, MALFORMED (wins) or FRAGMENT; returns the sound fragments."""
    fragment = fragment & ~(bad | cut)
    set_status(out, rows, cut, Status.TRUNCATED)
    set_status(out, rows, bad, Status.MALFORMED)
    set_status(out, rows, fragment, Status.FRAGMENT)
    return fragment


def ipv6(bv: ByteView, cur: Cursor, out: PacketBatch) -> Segment:
    """IPv6: 0-3 version|class|flow, 4-5 payload length, 6 next header, 7 hop limit,
    8-23 source, 24-39 destination; then the extension header chain.

    A payload length of 0 is a jumbogram (RFC 2675), not decoded: MALFORMED,
    unless the next header is 59 (nothing follows).
    """
    p, r = cur.pos, cur.rows
    head = bv.header(p, IPV6_LEN)
    w0 = head.u64(0)
    plen = (w0 >> 16) & 0xFFFF
    next_header = (w0 >> 8) & 0xFF
    put(out.ip_version, r, 6)
    put(out.l3_offset, r, p)
    put(out.ip_len, r, plen + IPV6_LEN)
    put(out.src_hi, r, head.u64u(8))
    put(out.src_lo, r, head.u64u(16))
    put(out.dst_hi, r, head.u64u(24))
    put(out.dst_lo, r, head.u64u(32))
    avail = cur.avail()
    bad = (((avail >= 1) & (((w0 >> 60) & 0xF) != 6))
           | ((avail >= 7) & (plen == 0) & (next_header != NEXT_NONE)))
    cut = avail < IPV6_LEN
    chain = Cursor(r, p + IPV6_LEN, cur.end)
    if (bad | cut).any():
        clear_cut(out, r, avail, _IPV6_CUT)
        set_status(out, r, cut, Status.TRUNCATED)
        set_status(out, r, bad, Status.MALFORMED)
        chain = chain.select(~(bad | cut))
        next_header, plen = next_header[~(bad | cut)], plen[~(bad | cut)]
    if _IS_EXTENSION[next_header].any():
        return _extension_chain(bv, chain, next_header, chain.pos + plen, out)
    put(out.proto, chain.rows, next_header)
    put(out.ip_hdr_len, chain.rows, IPV6_LEN)
    return Segment(chain, plen, KIND_V6[next_header], None)


def extension_header(bv: ByteView, cur: Cursor, kind: np.ndarray,
                     limit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One extension header: 0 next header, 1 length (RFC 8200 section 4.3-4.6).

    Size: hop-by-hop, routing, destination options (length+1)*8; fragment 8;
    AH (RFC 4302 section 2.2) (length+2)*4. Returns (size, next header,
    status), status 0 where the walk may go on.
    """
    word = bv.header(cur.pos, 2).u16(0)
    length = word & 0xFF
    is_fragment = kind == EXT_FRAGMENT
    size = np.where(is_fragment, FRAGMENT_LEN,
                    np.where(kind == EXT_AH, (length + 2) * 4, (length + 1) * 8))
    avail = cur.avail()
    cut = avail < size  # the whole header: the transport header is after it
    past_end = (cur.pos + size > limit) & (is_fragment | (avail >= 2))
    status = np.where(past_end, int(Status.MALFORMED), np.where(cut, int(Status.TRUNCATED), 0))
    return size, word >> 8, status


def fragment_header(bv: ByteView, cur: Cursor, out: PacketBatch) -> np.ndarray:
    """IPv6 fragment header: 0 next, 1 reserved, 2-3 offset<<3 | M, 4-7 identification.

    Writes the fragment columns; returns True for non-first fragments.
    """
    word = bv.header(cur.pos, FRAGMENT_LEN).u64(0)
    offset = (word >> 32) & 0xFFF8  # 13-bit offset in 8-byte units = bytes
    put(out.frag_offset, cur.rows, offset)
    put(out.more_fragments, cur.rows, ((word >> 32) & 1) == 1)
    put(out.ip_id, cur.rows, word & 0xFFFFFFFF)
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
