"""Encapsulations between the link header and IP: VLAN, MPLS, PPPoE, LLC/SNAP, PPP.

Link decoders (link.py) end with a *next-header code* per frame: a 16-bit
ethertype, one of the ``NEXT_*`` codes for headers that have no ethertype of
their own, or a negative code ``-Status`` that ends the frame's decoding.
``resolve`` walks the codes one header per pass (each pass vectorized over the
frames still inside an encapsulation) until every frame reaches IPv4, IPv6 or
a Status. The walk is bounded: more than ``MAX_VLAN_TAGS`` tags or
``MAX_MPLS_LABELS`` labels is MALFORMED.

Each step function takes the frames at one kind of header and returns the
position and code of the header after it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tracker.decode._bytes import ByteView, Cursor, column, header, put, subset
from tracker.packets import PacketBatch, Status

# Ethertypes: IEEE 802 Numbers (IANA "ieee-802-numbers" registry).
ETHERTYPE_IPV4 = 0x0800  # RFC 894
ETHERTYPE_IPV6 = 0x86DD  # RFC 2464
ETHERTYPE_VLAN = 0x8100  # IEEE 802.1Q customer VLAN tag (C-tag)
ETHERTYPE_QINQ = 0x88A8  # IEEE 802.1ad service VLAN tag (S-tag)
ETHERTYPE_QINQ_9100 = 0x9100  # pre-802.1ad vendor QinQ outer tag (Cisco, Juniper)
ETHERTYPE_MPLS = 0x8847  # RFC 3032 section 5, MPLS unicast
ETHERTYPE_MPLS_MC = 0x8848  # RFC 5332 section 4, MPLS multicast
ETHERTYPE_PPPOE_DISCOVERY = 0x8863  # RFC 2516 section 4 (not IP)
ETHERTYPE_PPPOE_SESSION = 0x8864  # RFC 2516 section 4
ETHERTYPE_PBB = 0x88E7  # IEEE 802.1ah provider backbone bridging: the I-TAG
ETHERTYPE_VNTAG = 0x8926  # Cisco VN-Tag (the IEEE 802.1Qbh draft's tag)
ETHERTYPE_FABRICPATH = 0x8903  # Cisco FabricPath (Wireshark packet-cfp.c; Zeek decodes it)
# IEEE 802.3 clause 3.2.6: a type/length field <= 1500 is a length, and an
# IEEE 802.2 LLC header follows; 1536 (0x0600) and up are ethertypes.
ETHER_MAX_LENGTH = 1500
ETHERTYPE_MIN = 0x0600

# Next-header codes above the 16-bit ethertype space (internal to decode).
NEXT_LLC = 0x1_0000  # an IEEE 802.2 LLC header
NEXT_PPP = 0x1_0001  # a PPP protocol field (RFC 1661 section 2)
NEXT_IP_BY_VERSION = 0x1_0002  # IPv4 or IPv6 by the version nibble, else NOT_IP

# Bounds of the walk (beyond them the frame is MALFORMED).
MAX_VLAN_TAGS = 8
MAX_MPLS_LABELS = 16
_MAX_STEPS = MAX_VLAN_TAGS + MAX_MPLS_LABELS + 8  # + LLC, SNAP, PPPoE, PPP, version

# Header tables: (field, numpy type) in wire order; the comments give byte offsets.
VLAN_TAG = header(  # IEEE 802.1Q clause 9.3 (the TPID is the ethertype before it)
    ("tci", ">u2"),  # 0-1: PCP (3 bits) | DEI (1) | VID (12)
    ("type", ">u2"),  # 2-3: inner ethertype or length
)
MPLS_ENTRY = header(  # RFC 3032 section 2.1
    ("label_tc", ">u2"),  # 0-1: label (high 16 bits)
    ("label_tc_s", "u1"),  # 2: label (low 4) | TC (3) | S, bottom of stack (1)
    ("ttl", "u1"),  # 3
)
LLC_SNAP = header(  # IEEE 802.2 LLC, then SNAP (RFC 1042)
    ("dsap", "u1"),  # 0
    ("ssap", "u1"),  # 1
    ("control", "u1"),  # 2
    ("oui", "u1", (3,)),  # 3-5: SNAP organization code
    ("type", ">u2"),  # 6-7: SNAP protocol id, an ethertype for the OUIs below
)
PPPOE = header(  # RFC 2516 section 4
    ("ver_type", "u1"),  # 0: version 1 | type 1
    ("code", "u1"),  # 1: 0x00 for session data
    ("session", ">u2"),  # 2-3
    ("length", ">u2"),  # 4-5: PPP payload length
)
PPP_PROTOCOL = header(("protocol", ">u2"))  # RFC 1661 section 2 (may be 1 byte, see below)
FABRICPATH = header(  # Cisco FabricPath: the rest of the tag, then the original frame's header
    ("ftag_ttl", ">u2"),  # 0-1: forwarding tag (10 bits) | TTL (6)
    ("dst", "V6"),  # 2-7: original destination MAC
    ("src", "V6"),  # 8-13: original source MAC
    ("type", ">u2"),  # 14-15: original type or length
)
PBB_ITAG = header(  # IEEE 802.1ah clause 9.7: the I-TAG, then the customer frame's header
    ("itag", ">u4"),  # 0-3: PCP (3) | DEI (1) | UCA (1) | reserved (3) | I-SID (24)
    ("dst", "V6"),  # 4-9: customer destination MAC
    ("src", "V6"),  # 10-15: customer source MAC
    ("type", ">u2"),  # 16-17: customer type or length
)
VN_TAG = header(
    ("tag", ">u4"),  # 0-3: direction, pointer, destination VIF, looped, version, source VIF
    ("type", ">u2"),  # 4-5: next ethertype
)

LLC_LEN = 3  # DSAP, SSAP, control (U-format)
SAP_SNAP = 0xAA  # IEEE 802 numbers: SNAP DSAP/SSAP
LLC_UI = 0x03  # unnumbered information
SNAP_OUI_ETHERTYPE = (0x000000, 0x0000F8)  # RFC 1042; IEEE 802.1H bridge tunnel

# PPP protocol numbers (RFC 1661 section 2, IANA "ppp-numbers").
PPP_IPV4 = 0x0021  # RFC 1332
PPP_IPV6 = 0x0057  # RFC 5072
PPP_MPLS = 0x0281  # RFC 3032 section 4.3
PPP_MPLS_MC = 0x0283  # RFC 3032 section 4.3

PPPOE_VER_TYPE = 0x11  # RFC 2516 section 4: VER = 1, TYPE = 1
PPPOE_CODE_SESSION = 0x00  # RFC 2516 section 5.5: session data

_VLAN_TYPES = (ETHERTYPE_VLAN, ETHERTYPE_QINQ, ETHERTYPE_QINQ_9100)
_MPLS_TYPES = (ETHERTYPE_MPLS, ETHERTYPE_MPLS_MC)


def stop(status: Status) -> int:
    """The code that ends a frame's walk with ``status``."""
    return -int(status)


def need(avail: np.ndarray, size: int | np.ndarray, code: np.ndarray) -> np.ndarray:
    """``code``, or TRUNCATED where fewer than ``size`` bytes were captured."""
    short = avail < size
    return np.where(short, stop(Status.TRUNCATED), code) if short.any() else code


def type_or_length(value: np.ndarray) -> np.ndarray:
    """Code of an Ethernet type/length field: an ethertype, or LLC for a length."""
    small = value < ETHERTYPE_MIN
    if not small.any():
        return value
    code = np.where(small, stop(Status.NOT_IP), value)
    return np.where(value <= ETHER_MAX_LENGTH, NEXT_LLC, code)


def vlan_tag(bv: ByteView, cur: Cursor, out: PacketBatch) -> tuple[np.ndarray, np.ndarray]:
    """802.1Q / 802.1ad tag: the outermost tag's VID is the frame's VLAN."""
    tag = bv.records(cur.pos, VLAN_TAG)
    vid = column(tag, "tci") & 0x0FFF
    outermost = out.vlan[cur.rows] < 0  # the walk meets the outer tag first
    put(out.vlan, cur.rows, vid, outermost & (cur.avail() >= 2))
    code = need(cur.avail(), VLAN_TAG.itemsize, type_or_length(column(tag, "type")))
    return cur.pos + VLAN_TAG.itemsize, code


def mpls_entry(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """MPLS label stack entry: another entry follows unless S (bottom of stack) is set."""
    bottom = (column(bv.records(cur.pos, MPLS_ENTRY), "label_tc_s") & 0x01) == 1
    code = np.where(bottom, NEXT_IP_BY_VERSION, ETHERTYPE_MPLS)
    return cur.pos + MPLS_ENTRY.itemsize, need(cur.avail(), MPLS_ENTRY.itemsize, code)


def ip_by_version(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """Below MPLS there is no type field: guess IP by the version nibble.

    Anything else (a pseudowire control word starts with nibble 0, RFC 4385)
    is NOT_IP: pseudowires are out of scope.
    """
    version = bv.u8(cur.pos) >> 4
    code = np.where(version == 4, ETHERTYPE_IPV4,
                    np.where(version == 6, ETHERTYPE_IPV6, stop(Status.NOT_IP)))
    return cur.pos, need(cur.avail(), 1, code)


def llc(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """IEEE 802.2 LLC: only SNAP with an ethertype OUI carries IP here.

    Plain LLC (spanning tree, NetBIOS, ...) and other OUIs are NOT_IP.
    """
    head = bv.records(cur.pos, LLC_SNAP)
    snap = (head["dsap"] == SAP_SNAP) & (head["ssap"] == SAP_SNAP) & (head["control"] == LLC_UI)
    oui = head["oui"].astype(np.int64) @ np.array([1 << 16, 1 << 8, 1])
    code = np.where(snap & np.isin(oui, SNAP_OUI_ETHERTYPE), column(head, "type"),
                    stop(Status.NOT_IP))
    avail = cur.avail()
    code = np.where(snap & (avail < LLC_SNAP.itemsize), stop(Status.TRUNCATED), code)
    return cur.pos + LLC_SNAP.itemsize, need(avail, LLC_LEN, code)


def pppoe_session(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """PPPoE session header: version/type 0x11 and code 0, then a PPP protocol."""
    head = bv.records(cur.pos, PPPOE)
    avail = cur.avail()
    insane = (avail >= 2) & ((head["ver_type"] != PPPOE_VER_TYPE)
                             | (head["code"] != PPPOE_CODE_SESSION))
    code = need(avail, PPPOE.itemsize, np.full(len(cur), NEXT_PPP))
    return cur.pos + PPPOE.itemsize, np.where(insane, stop(Status.MALFORMED), code)


def fabricpath(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """Cisco FabricPath: the original Ethernet frame follows the tag; go on with its type."""
    code = type_or_length(column(bv.records(cur.pos, FABRICPATH), "type"))
    return cur.pos + FABRICPATH.itemsize, need(cur.avail(), FABRICPATH.itemsize, code)


def pbb(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """802.1ah PBB: skip the I-TAG and the customer MACs; go on with the customer type."""
    code = type_or_length(column(bv.records(cur.pos, PBB_ITAG), "type"))
    return cur.pos + PBB_ITAG.itemsize, need(cur.avail(), PBB_ITAG.itemsize + 1, code)


def vn_tag(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """VN-Tag: 4 bytes, then the next ethertype. As in Zeek (ZEEK-FACTS 7.6) only a VLAN
    tag may follow; anything else, IP included, is NOT_IP."""
    kind = column(bv.records(cur.pos, VN_TAG), "type")
    code = np.where(np.isin(kind, _VLAN_TYPES), kind, stop(Status.NOT_IP))
    return cur.pos + VN_TAG.itemsize, need(cur.avail(), VN_TAG.itemsize + 1, code)


def ppp_protocol(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """PPP protocol field (RFC 1661 section 2): 2 bytes, or 1 when compressed.

    A protocol number's low byte is odd and its high byte even, so an odd
    first byte is a compressed 1-byte field (protocol field compression).
    """
    field = column(bv.records(cur.pos, PPP_PROTOCOL), "protocol")
    short = (field & 0x100) != 0  # the first byte is odd
    proto = np.where(short, field >> 8, field)
    size = np.where(short, 1, 2)
    code = np.select([proto == PPP_IPV4, proto == PPP_IPV6,
                      (proto == PPP_MPLS) | (proto == PPP_MPLS_MC)],
                     [ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_MPLS], stop(Status.NOT_IP))
    return cur.pos + size, need(cur.avail(), size, code)


_Step = Callable[[ByteView, Cursor, PacketBatch], tuple[np.ndarray, np.ndarray]]

# Which step decodes which code; the walk's only dispatch table.
_STEPS: tuple[tuple[tuple[int, ...], _Step], ...] = (
    (_VLAN_TYPES, vlan_tag),
    (_MPLS_TYPES, lambda bv, cur, out: mpls_entry(bv, cur)),
    ((ETHERTYPE_PPPOE_SESSION,), lambda bv, cur, out: pppoe_session(bv, cur)),
    ((ETHERTYPE_FABRICPATH,), lambda bv, cur, out: fabricpath(bv, cur)),
    ((ETHERTYPE_PBB,), lambda bv, cur, out: pbb(bv, cur)),
    ((ETHERTYPE_VNTAG,), lambda bv, cur, out: vn_tag(bv, cur)),
    ((NEXT_LLC,), lambda bv, cur, out: llc(bv, cur)),
    ((NEXT_PPP,), lambda bv, cur, out: ppp_protocol(bv, cur)),
    ((NEXT_IP_BY_VERSION,), lambda bv, cur, out: ip_by_version(bv, cur)),
)

# What the walk does with a code: table indexed by code + _BIAS (codes are
# -5..NEXT_IP_BY_VERSION by construction: 16-bit fields, NEXT_*, -Status).
_AT_V4, _AT_V6, _AT_OTHER, _AT_STOP, _AT_ENCAP = range(5)
_BIAS = 8
_WHAT = np.full(NEXT_IP_BY_VERSION + 1 + _BIAS, _AT_OTHER, np.int8)
_WHAT[:_BIAS] = _AT_STOP
_WHAT[ETHERTYPE_IPV4 + _BIAS] = _AT_V4
_WHAT[ETHERTYPE_IPV6 + _BIAS] = _AT_V6
_WHAT[[c + _BIAS for codes, _ in _STEPS for c in codes]] = _AT_ENCAP


def _what(code: np.ndarray) -> np.ndarray:
    """``_AT_*`` of each code."""
    return _WHAT[code + _BIAS]


def _step(bv: ByteView, cur: Cursor, code: np.ndarray,
          out: PacketBatch) -> tuple[np.ndarray, np.ndarray]:
    """One header further for frames inside an encapsulation."""
    new_pos = cur.pos.copy()
    new_code = code.copy()
    for codes, step in _STEPS:
        at = np.isin(code, codes)
        if at.any():
            new_pos[at], new_code[at] = step(bv, cur.select(at), out)
    return new_pos, new_code


def _over_bound(code: np.ndarray, tags: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Count this pass's VLAN tags and MPLS labels; true where a bound is passed."""
    tags += np.isin(code, _VLAN_TYPES)
    labels += np.isin(code, _MPLS_TYPES)
    return (tags > MAX_VLAN_TAGS) | (labels > MAX_MPLS_LABELS)


def resolve(bv: ByteView, cur: Cursor, code: np.ndarray,
            out: PacketBatch) -> tuple[Cursor, Cursor]:
    """Walk every frame to its IP header; give the others their Status.

    ``cur`` is at the header named by ``code`` (link.py's result). Returns the
    frames at an IPv4 header and those at an IPv6 header.
    """
    what = _what(code)
    todo = np.flatnonzero(what == _AT_ENCAP)
    if todo.size:
        pos, code = _walk(bv, cur, code, todo, out)
        cur, what = Cursor(cur.rows, pos, cur.end), _what(code)
    code, what = _by_version(bv, cur, code, what)
    odd = what >= _AT_OTHER
    if odd.any():
        put(out.status, cur.rows, np.where(what == _AT_STOP, -code, int(Status.NOT_IP)), odd)
    return cur.select(what == _AT_V4), cur.select(what == _AT_V6)


def _by_version(bv: ByteView, cur: Cursor, code: np.ndarray,
                what: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(code, what) once the version nibble has its say: Zeek's IP analyzer takes a
    header as IPv4 or IPv6 by its version, whichever type led to it, and drops any other
    version (weird unknown_ip_version, IP.cc L47-63); tshark too reads an IPv6 header
    under the IPv4 ethertype. Another version is MALFORMED with no IP columns: its bytes
    are no IP header. A frame cut before the header keeps its type (TRUNCATED later)."""
    at = np.flatnonzero(((what == _AT_V4) | (what == _AT_V6)) & (cur.avail() >= 1))
    if at.size == 0:
        return code, what
    version = bv.u8(cur.pos[at]) >> 4
    if (version == np.where(what[at] == _AT_V4, 4, 6)).all():
        return code, what  # every type agrees with its header: the usual case
    code = code.copy()
    code[at] = np.where(version == 4, ETHERTYPE_IPV4,
                        np.where(version == 6, ETHERTYPE_IPV6, stop(Status.MALFORMED)))
    return code, _what(code)


def _walk(bv: ByteView, cur: Cursor, code: np.ndarray, todo: np.ndarray,
          out: PacketBatch) -> tuple[np.ndarray, np.ndarray]:
    """Step the frames at ``todo`` through their encapsulations (bounded)."""
    pos, code = cur.pos.copy(), code.copy()
    tags = np.zeros(len(cur), np.int64)
    labels = np.zeros(len(cur), np.int64)
    for _ in range(_MAX_STEPS):
        todo = todo[_what(code[todo]) == _AT_ENCAP]
        if todo.size == 0:
            break
        sub_code, sub_tags, sub_labels = code[todo], tags[todo], labels[todo]
        over = _over_bound(sub_code, sub_tags, sub_labels)
        tags[todo], labels[todo] = sub_tags, sub_labels
        sub = Cursor(subset(cur.rows, todo), pos[todo], cur.end[todo])
        pos[todo], sub_code = _step(bv, sub, sub_code, out)
        code[todo] = np.where(over, stop(Status.MALFORMED), sub_code)
    code[todo[_what(code[todo]) == _AT_ENCAP]] = stop(Status.MALFORMED)  # did not end
    return pos, code
