"""Link-layer headers: one function per link type (tcpdump.org/linktypes.html).

Each function takes the frames at their link header and returns, per frame,
the position of the next header and its next-header code (see encap.py: an
ethertype, a ``NEXT_*`` code, or ``-Status``). ``link_header`` picks the
function for a batch's link type; PPI picks one per frame for what it wraps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tracker.decode._bytes import ByteView, Cursor, column, header, subset
from tracker.decode.encap import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    ETHERTYPE_MIN,
    NEXT_IP_BY_VERSION,
    NEXT_LLC,
    NEXT_PPP,
    need,
    stop,
    type_or_length,
)
from tracker.frames import (
    LINKTYPE_C_HDLC,
    LINKTYPE_ETHERNET,
    LINKTYPE_FDDI,
    LINKTYPE_IEEE802_11,
    LINKTYPE_IEEE802_11_RADIOTAP,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NFLOG,
    LINKTYPE_NULL,
    LINKTYPE_PPI,
    LINKTYPE_PPP,
    LINKTYPE_PPP_HDLC,
    LINKTYPE_RAW,
    LINKTYPE_RAW_BSD12,
    LINKTYPE_RAW_BSD14,
)
from tracker.packets import Status

LinkDecoder = Callable[[ByteView, Cursor], tuple[np.ndarray, np.ndarray]]

# Header tables: (field, numpy type) in wire order; the comments give byte offsets.
ETHERNET = header(  # IEEE 802.3 clause 3.1.1
    ("dst", "V6"),  # 0-5
    ("src", "V6"),  # 6-11
    ("type", ">u2"),  # 12-13: ethertype, or a length <= 1500 (802.3 + LLC)
)
LINUX_SLL = header(  # tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html
    ("pkttype", ">u2"),  # 0-1: to us, broadcast, multicast, other host, outgoing
    ("hatype", ">u2"),  # 2-3: ARPHRD_ type
    ("halen", ">u2"),  # 4-5: link-layer address length
    ("addr", "V8"),  # 6-13: link-layer address, padded
    ("protocol", ">u2"),  # 14-15: ethertype, or a Linux ETH_P_ value below 0x0600
)
LINUX_SLL2 = header(  # tcpdump.org/linktypes/LINKTYPE_LINUX_SLL2.html
    ("protocol", ">u2"),  # 0-1: as in SLL
    ("reserved", ">u2"),  # 2-3
    ("ifindex", ">u4"),  # 4-7
    ("hatype", ">u2"),  # 8-9
    ("pkttype", "u1"),  # 10
    ("halen", "u1"),  # 11
    ("addr", "V8"),  # 12-19
)
LOOPBACK = header(("family", ">u4"))  # 0-3: address family (LINKTYPE_NULL / LOOP)
LOOPBACK_LE = header(("family", "<u4"))  # the same bytes, little endian
CISCO_HDLC = header(  # tcpdump.org/linktypes: LINKTYPE_C_HDLC
    ("address", "u1"),  # 0: 0x0F unicast, 0x8F multicast
    ("control", "u1"),  # 1
    ("protocol", ">u2"),  # 2-3: ethertype
)
PPI = header(  # Per-Packet Information header spec 1.0.10, section 3.1
    ("version", "u1"),  # 0
    ("flags", "u1"),  # 1
    ("length", "<u2"),  # 2-3: header length, little endian
    ("dlt", "<u4"),  # 4-7: link type of the wrapped frame, little endian
)
IEEE802_11 = header(  # IEEE 802.11-2020 clause 9.2.3, the data frame's fixed part
    ("fc0", "u1"),  # 0: frame control: protocol version (bits 0-1), type (2-3), subtype (4-7)
    ("fc1", "u1"),  # 1: flags: To DS 0x01, From DS 0x02, ..., Protected 0x40, +HTC 0x80
    ("duration", "<u2"),  # 2-3
    ("addr1", "V6"),  # 4-9
    ("addr2", "V6"),  # 10-15
    ("addr3", "V6"),  # 16-21
    ("seq_ctl", "<u2"),  # 22-23
)
RADIOTAP = header(  # radiotap.org: the header every radiotap capture starts with
    ("version", "u1"),  # 0
    ("pad", "u1"),  # 1
    ("length", "<u2"),  # 2-3: the whole radiotap header's length, little endian
)
NFLOG = header(  # tcpdump.org/linktypes/LINKTYPE_NFLOG.html
    ("family", "u1"),  # 0: address family of the packet (AF_INET 2, AF_INET6 10)
    ("version", "u1"),  # 1: 0
    ("resource_id", ">u2"),  # 2-3: the netlink group
)
# Then TLVs: length (2 bytes, counting these 4) and type (2), both in the byte order of
# the capturing host (libpcap swaps them to the reader's), each padded to 4 bytes.
NFLOG_TLV = 4
NFULA_PAYLOAD = 9  # the TLV whose value is the packet
WLAN_ADDR4 = 6  # Address 4, present when To DS and From DS are both set
WLAN_QOS = 2  # QoS Control, present in the QoS data subtypes (subtype bit 0x80 of byte 0)
QOS_AMSDU = 0x80  # QoS Control byte 0: the body is an A-MSDU (several subframes)
AMSDU_SUBFRAME = 14  # an A-MSDU subframe's header: destination, source, length
# Link types of 802.11 frames, where an A-MSDU frame is split into its packets after
# decoding (tunnels.py link_amsdu): one row per frame here.
WLAN_LINKS = (LINKTYPE_IEEE802_11, LINKTYPE_IEEE802_11_RADIOTAP)
FDDI_LEN = 21  # frame control 1, destination 6, source 6, LLC/SNAP 8 (Zeek skips them all)

SLL_PROTO_802_2 = 0x0004  # Linux if_ether.h ETH_P_802_2: an 802.2 LLC frame follows

# Address families in LINKTYPE_NULL / LOOP headers (tcpdump linktypes page).
AF_INET = 2
AF_INET6 = (10, 24, 28, 30)  # Linux 10; NetBSD/OpenBSD/BSD/OS 24; FreeBSD 28; Darwin 30

# PPP in HDLC-like framing (RFC 1662 section 3.1): address 0xFF, control 0x03.
PPP_ADDRESS = 0xFF
# LINKTYPE_PPP_HDLC (and in practice LINKTYPE_PPP) may instead hold Cisco HDLC
# frames (RFC 1547 section 4.3.1), whose address byte is 0x0F (unicast) or 0x8F
# (multicast).
CHDLC_ADDRESSES = (0x0F, 0x8F)


def ethernet(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """Ethernet II / IEEE 802.3: the type/length field names what follows."""
    code = type_or_length(column(bv.records(cur.pos, ETHERNET), "type"))
    return cur.pos + ETHERNET.itemsize, need(cur.avail(), ETHERNET.itemsize, code)


def _sll_protocol(proto: np.ndarray) -> np.ndarray:
    """Code of a Linux cooked protocol: an ethertype, 802.2 LLC, or not IP."""
    small = proto < ETHERTYPE_MIN
    if not small.any():
        return proto
    code = np.where(small, stop(Status.NOT_IP), proto)
    return np.where(proto == SLL_PROTO_802_2, NEXT_LLC, code)


def linux_sll(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """Linux cooked capture v1: the protocol is at bytes 14-15."""
    code = _sll_protocol(column(bv.records(cur.pos, LINUX_SLL), "protocol"))
    return cur.pos + LINUX_SLL.itemsize, need(cur.avail(), LINUX_SLL.itemsize, code)


def linux_sll2(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """Linux cooked capture v2: the protocol is at bytes 0-1."""
    code = _sll_protocol(column(bv.records(cur.pos, LINUX_SLL2), "protocol"))
    return cur.pos + LINUX_SLL2.itemsize, need(cur.avail(), LINUX_SLL2.itemsize, code)


def _family(af: np.ndarray) -> np.ndarray:
    """Code of a loopback address family."""
    return np.where(af == AF_INET, ETHERTYPE_IPV4,
                    np.where(np.isin(af, AF_INET6), ETHERTYPE_IPV6, stop(Status.NOT_IP)))


def null(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """BSD loopback: the address family in the writer's byte order, so try both.

    A family is a small number, so the order whose value fits 16 bits is right.
    """
    head = bv.records(cur.pos, LOOPBACK)
    little = column(head.view(LOOPBACK_LE), "family")
    af = np.where(little <= 0xFFFF, little, column(head, "family"))
    return cur.pos + LOOPBACK.itemsize, need(cur.avail(), LOOPBACK.itemsize, _family(af))


def loop(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """OpenBSD loopback: the address family in network byte order."""
    family = _family(column(bv.records(cur.pos, LOOPBACK), "family"))
    return cur.pos + LOOPBACK.itemsize, need(cur.avail(), LOOPBACK.itemsize, family)


def raw_ip(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """Raw IP: no link header; the version nibble says IPv4 or IPv6, else MALFORMED
    (encap.resolve reads it for every IP header, whatever type led there)."""
    return cur.pos, need(cur.avail(), 1, np.full(len(cur), ETHERTYPE_IPV4))


def ppp(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """PPP: optional 0-1 address/control FF 03 (RFC 1662), then the protocol field.

    A first byte 0xFF means the address/control pair is there: as a 2-byte
    protocol its high byte would be odd, and the 1-byte protocol 0xFF is
    reserved (IANA ppp-numbers: 0x00ff "compression inefficient"). A first
    byte 0x0F or 0x8F is a Cisco HDLC frame (tcpdump and Wireshark accept them
    in both PPP link types; those 1-byte protocols are reserved too).
    """
    first = bv.u8(cur.pos)
    framed = first == PPP_ADDRESS
    code = need(cur.avail(), np.where(framed, 3, 1), np.full(len(cur), NEXT_PPP))
    pos = cur.pos + np.where(framed, 2, 0)
    cisco = np.isin(first, CHDLC_ADDRESSES) & (cur.avail() >= 1)
    if cisco.any():
        pos[cisco], code[cisco] = cisco_hdlc(bv, cur.select(cisco))
    return pos, code


def cisco_hdlc(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """Cisco HDLC: the protocol is an ethertype (SLARP 0x8035 is not IP)."""
    proto = column(bv.records(cur.pos, CISCO_HDLC), "protocol")
    code = np.where(proto >= ETHERTYPE_MIN, proto, stop(Status.NOT_IP))
    return cur.pos + CISCO_HDLC.itemsize, need(cur.avail(), CISCO_HDLC.itemsize, code)


def ieee802_11(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """IEEE 802.11 data frames, as Zeek reads them (ZEEK-FACTS section 7.1): 3 or 4
    addresses, QoS Control in the QoS subtypes, then LLC/SNAP.

    Management and control frames and the data subtypes without a body (Null, QoS
    Null, CF-Ack/Poll) are NOT_IP; a protected frame is ENCRYPTED. An A-MSDU (several
    packets in one frame) is read to its first packet, after the first subframe's
    header; the others are rows the flow table's tunnel step adds (tunnels.py
    link_amsdu; the decoder hints such frames: wlan_amsdu). Zeek needs more than 24
    bytes: a shorter frame is TRUNCATED. The +HTC field is not skipped (nor by Zeek):
    LLC/SNAP is not found there and the frame is NOT_IP.
    """
    head = bv.records(cur.pos, IEEE802_11)
    fc0, fc1 = head["fc0"].astype(np.int64), head["fc1"].astype(np.int64)
    size = wlan_header_size(fc0, fc1)
    amsdu = is_amsdu(fc0, fc1, bv.u8(cur.pos + size - WLAN_QOS))
    code = np.select([~carries_data(fc0), (fc1 & 0x40) != 0], [stop(Status.NOT_IP),
                                                                stop(Status.ENCRYPTED)], NEXT_LLC)
    size = size + np.where(amsdu, AMSDU_SUBFRAME, 0)
    code = np.where(carries_data(fc0), need(cur.avail(), size, code), code)
    return cur.pos + size, need(cur.avail(), IEEE802_11.itemsize + 1, code)


def carries_data(fc0: np.ndarray) -> np.ndarray:
    """802.11 frame types 2 and 3 without the subtype's "no data" bit."""
    return ((fc0 & 0x08) != 0) & ((fc0 & 0x40) == 0)


def wlan_header_size(fc0: np.ndarray, fc1: np.ndarray) -> np.ndarray:
    """The 802.11 header: 3 addresses, a 4th with To DS and From DS, QoS Control."""
    return IEEE802_11.itemsize + np.where((fc1 & 0x03) == 0x03, WLAN_ADDR4, 0) \
        + np.where((fc0 & 0x80) != 0, WLAN_QOS, 0)


def is_amsdu(fc0: np.ndarray, fc1: np.ndarray, qos0: np.ndarray) -> np.ndarray:
    """An unprotected QoS data frame whose QoS Control (first byte ``qos0``) says A-MSDU."""
    return carries_data(fc0) & ((fc1 & 0x40) == 0) & ((fc0 & 0x80) != 0) \
        & ((qos0 & QOS_AMSDU) != 0)


def wlan_amsdu(data: np.ndarray, start: np.ndarray, end: np.ndarray, linktype: int
               ) -> np.ndarray:
    """Which frames of an 802.11 link type (WLAN_LINKS) are A-MSDUs (bool per frame),
    read as ieee802_11 and radiotap read them; ``start`` and ``end`` bound each frame in
    ``data``."""
    if data.size == 0:
        return np.zeros(start.size, np.bool_)
    at = wlan_start(data, start, end, linktype)
    fits = at + IEEE802_11.itemsize + WLAN_ADDR4 + WLAN_QOS <= end
    fc0, fc1 = _bytes_at(data, at, fits), _bytes_at(data, at + 1, fits)
    qos0 = _bytes_at(data, at + wlan_header_size(fc0, fc1) - WLAN_QOS, fits)
    return fits & is_amsdu(fc0, fc1, qos0)


def wlan_start(data: np.ndarray, start: np.ndarray, end: np.ndarray, linktype: int
               ) -> np.ndarray:
    """Where the 802.11 header of each frame starts: after the radiotap header (its
    little-endian length, as Zeek reads it), else at once; ``end`` past a cut one."""
    if linktype != LINKTYPE_IEEE802_11_RADIOTAP:
        return start
    ok = start + RADIOTAP.itemsize <= end
    length = _bytes_at(data, start + 2, ok) | _bytes_at(data, start + 3, ok) << 8
    return np.where(ok, start + length, end)


def _bytes_at(data: np.ndarray, pos: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """data[pos] where ``ok``, else 0 (int64; positions need not be inside data)."""
    if data.size == 0:
        return np.zeros(pos.size, np.int64)
    return np.where(ok, data[np.clip(pos, 0, data.size - 1)], 0).astype(np.int64)


def radiotap(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """Radiotap: a header of ``length`` bytes (little endian), then an 802.11 frame.
    Only the length is read, as Zeek does; it must leave part of the frame."""
    length = column(bv.records(cur.pos, RADIOTAP), "length")
    avail = cur.avail()
    code = np.where(length < RADIOTAP.itemsize, stop(Status.MALFORMED), 0)
    code = need(avail, np.maximum(length + 1, RADIOTAP.itemsize), code)
    pos = cur.pos + length
    inside = code == 0
    if inside.any():
        pos[inside], code[inside] = ieee802_11(bv, Cursor(subset(cur.rows, inside), pos[inside],
                                                          cur.end[inside]))
    return pos, code


def fddi(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """FDDI: Zeek skips frame control, the addresses and an LLC/SNAP header (21 bytes)
    without reading them and takes IP by its version; so do we (ZEEK-FACTS 7.4)."""
    code = need(cur.avail(), FDDI_LEN + 1, np.full(len(cur), NEXT_IP_BY_VERSION))
    return cur.pos + FDDI_LEN, code


def nflog(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """Linux NFLOG, as Zeek reads it (NFLog.cc): version 0, then the TLVs are skipped to
    the payload one, whose value, to the frame's end, is the packet: IP for families 2
    and 10 (taken by the version nibble), else not IP. The TLVs' byte order is the
    capturing host's, which the file does not say: a TLV type is a small number, so its
    nonzero byte tells the order, as a loopback family does (null)."""
    head = bv.records(cur.pos, NFLOG)
    family = column(head, "family")
    code = np.select([family == AF_INET, family == AF_INET6[0]],
                     [ETHERTYPE_IPV4, ETHERTYPE_IPV6], stop(Status.NOT_IP))
    code = np.where(column(head, "version") != 0, stop(Status.MALFORMED), code)
    code = need(cur.avail(), NFLOG.itemsize + 1, code)  # Zeek: truncated_nflog_header
    pos = cur.pos + NFLOG.itemsize
    little = bv.u8(pos + 2) != 0  # the first TLV's type, low byte first
    walking = np.flatnonzero(code >= 0)
    while walking.size:  # each pass takes one TLV of every frame still walking
        p = pos[walking]
        room = cur.end[walking] - p
        b = [bv.u8(p + i) for i in range(NFLOG_TLV)]
        le = little[walking]
        length = np.where(le, b[0] | b[1] << 8, b[0] << 8 | b[1])
        kind = np.where(le, b[2] | b[3] << 8, b[2] << 8 | b[3])
        skip = (length + 3) & ~3  # padded to 4 bytes
        short = room <= NFLOG_TLV  # Zeek: nflog_no_pcap_payload
        payload = ~short & (kind == NFULA_PAYLOAD)
        bad = ~short & ~payload & ((length < NFLOG_TLV) | (skip > room))  # nflog_bad_tlv_len
        code[walking[short]] = stop(Status.TRUNCATED)
        code[walking[bad]] = stop(Status.MALFORMED)
        pos[walking] += np.where(payload, NFLOG_TLV, skip)
        walking = walking[~(short | payload | bad)]
    return pos, code


def unsupported(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """Any link type not decoded here: every frame is UNSUPPORTED_LINK."""
    return cur.pos, np.full(len(cur), stop(Status.UNSUPPORTED_LINK), dtype=np.int64)


def ppi(bv: ByteView, cur: Cursor) -> tuple[np.ndarray, np.ndarray]:
    """PPI: a header of ``length`` bytes, then a frame of link type ``dlt``.

    The wrapped frame is decoded by its own link type, one group per type.
    A PPI inside PPI is UNSUPPORTED_LINK (no nesting).
    """
    head = bv.records(cur.pos, PPI)
    hdr_len, dlt = column(head, "length"), column(head, "dlt")
    pos = cur.pos + hdr_len
    code = np.where(hdr_len < PPI.itemsize, stop(Status.MALFORMED), 0)
    code = need(cur.avail(), np.maximum(hdr_len, PPI.itemsize), code)
    inner = code == 0
    for linktype in np.unique(dlt[inner]).tolist():
        at = inner & (dlt == linktype)
        decoder = _LINKS.get(linktype, unsupported) if linktype != LINKTYPE_PPI else unsupported
        pos[at], code[at] = decoder(bv, Cursor(subset(cur.rows, at), pos[at], cur.end[at]))
    return pos, code


_LINKS: dict[int, LinkDecoder] = {
    LINKTYPE_ETHERNET: ethernet,
    LINKTYPE_LINUX_SLL: linux_sll,
    LINKTYPE_LINUX_SLL2: linux_sll2,
    LINKTYPE_NULL: null,
    LINKTYPE_LOOP: loop,
    LINKTYPE_RAW: raw_ip,
    LINKTYPE_RAW_BSD12: raw_ip,
    LINKTYPE_RAW_BSD14: raw_ip,
    LINKTYPE_IPV4: raw_ip,
    LINKTYPE_IPV6: raw_ip,
    LINKTYPE_PPP: ppp,
    LINKTYPE_PPP_HDLC: ppp,
    LINKTYPE_C_HDLC: cisco_hdlc,
    LINKTYPE_PPI: ppi,
    LINKTYPE_IEEE802_11: ieee802_11,
    LINKTYPE_IEEE802_11_RADIOTAP: radiotap,
    LINKTYPE_FDDI: fddi,
    LINKTYPE_NFLOG: nflog,
}


def link_header(bv: ByteView, cur: Cursor, linktype: int) -> tuple[np.ndarray, np.ndarray]:
    """Position and next-header code after the link header of every frame."""
    return _LINKS.get(linktype, unsupported)(bv, cur)
