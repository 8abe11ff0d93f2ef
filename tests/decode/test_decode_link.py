"""Link layers: every LINKTYPE the decoder knows, each cut inside its header, and the rest.

Each test frame carries the same IPv4/TCP SYN (tests/decode/decode_frames.py)
behind a different link header, so a right decode ends with the same
addresses and ports; the link header's own length gives the expected
``l3_offset``.
"""

from __future__ import annotations

import pytest
from decode_frames import (
    ETH_IPV4,
    MACS,
    NO_IP,
    TCP_SYN,
    V4_DST_LO,
    V4_SRC_LO,
    V6_SRC_LO,
    assert_fields,
    eth_ipv4_tcp,
    ipv4,
    ipv6,
    row,
    rows,
)

from tracker.frames import (
    LINKTYPE_C_HDLC,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_PPI,
    LINKTYPE_PPP,
    LINKTYPE_PPP_HDLC,
    LINKTYPE_RAW,
    LINKTYPE_RAW_BSD12,
    LINKTYPE_RAW_BSD14,
)
from tracker.packets import Status

IP_TCP = ipv4(40, 6) + TCP_SYN  # IPv4 total length 40, protocol TCP, then a SYN
IP6_TCP = ipv6(20, 6) + TCP_SYN  # IPv6 payload length 20, next header TCP


def assert_ipv4_syn(got: dict, l3_offset: int) -> None:
    """The IPv4/TCP SYN of IP_TCP was found at ``l3_offset``."""
    assert_fields(got, status=Status.OK, l3_offset=l3_offset, ip_version=4, proto=6,
                  ip_len=40, ip_hdr_len=20, src_lo=V4_SRC_LO, dst_lo=V4_DST_LO,
                  l4_offset=l3_offset + 20, src_port=50000, dst_port=80, tcp_flags=0x02,
                  seq=100, payload_len=0)


# --- Ethernet and IEEE 802.3 -----------------------------------------------------

def test_ethernet_ii() -> None:
    got = rows([eth_ipv4_tcp()], wire_len=[60])[0]
    assert_ipv4_syn(got, 14)
    assert_fields(got, record=0, caplen=54, wire_len=60, vlan=-1)


def test_8023_llc_snap_carries_ipv4() -> None:
    frame = MACS + bytes.fromhex(
        "0030"  # 802.3 length 48 (<= 1500: LLC follows)
        "aaaa03"  # LLC: DSAP 0xAA, SSAP 0xAA, control 0x03 (UI) = SNAP
        "000000"  # SNAP OUI 00-00-00: an ethertype follows (RFC 1042)
        "0800"  # ethertype IPv4
    ) + IP_TCP
    assert_ipv4_syn(row(frame), 22)


def test_8023_plain_llc_is_not_ip() -> None:
    frame = MACS + bytes.fromhex(
        "0026"  # 802.3 length 38
        "424203"  # LLC: DSAP 0x42, SSAP 0x42 (spanning tree), control 0x03
    ) + bytes(35)
    assert_fields(row(frame), status=Status.NOT_IP, **NO_IP)


def test_llc_snap_cut_is_truncated() -> None:
    frame = MACS + bytes.fromhex("0030" "aaaa03" "0000")  # SNAP cut inside the OUI
    assert_fields(row(frame), status=Status.TRUNCATED, **NO_IP)


def test_arp_and_lldp_are_not_ip() -> None:
    arp = MACS + bytes.fromhex("0806") + bytes(28)  # ethertype ARP (RFC 826)
    lldp = MACS + bytes.fromhex("88cc") + bytes(30)  # ethertype LLDP (IEEE 802.1AB)
    for got in rows([arp, lldp]):
        assert_fields(got, status=Status.NOT_IP, vlan=-1, **NO_IP)


@pytest.mark.parametrize("cut", [0, 1, 6, 12, 13])
def test_ethernet_cut(cut: int) -> None:
    got = row(eth_ipv4_tcp()[:cut])
    assert_fields(got, status=Status.TRUNCATED, caplen=cut, **NO_IP)


def test_ethernet_header_only_is_truncated_ipv4() -> None:
    got = row(ETH_IPV4)  # ethertype IPv4 but no byte of the IP header
    assert_fields(got, status=Status.TRUNCATED, **NO_IP)


# --- VLAN tags --------------------------------------------------------------------

def vlan_tag(tpid: int, vid: int) -> bytes:
    """TPID (the ethertype that announces the tag) + TCI with PCP 0, DEI 0."""
    return tpid.to_bytes(2, "big") + vid.to_bytes(2, "big")


def test_single_vlan() -> None:
    frame = MACS + vlan_tag(0x8100, 100) + bytes.fromhex("0800") + IP_TCP
    got = row(frame)
    assert_ipv4_syn(got, 18)
    assert got["vlan"] == 100


def test_qinq_reports_outer_tag() -> None:
    frame = (MACS + vlan_tag(0x88A8, 300)  # 802.1ad S-tag, VID 300
             + vlan_tag(0x8100, 7)  # 802.1Q C-tag, VID 7
             + bytes.fromhex("0800") + IP_TCP)
    got = row(frame)
    assert_ipv4_syn(got, 22)
    assert got["vlan"] == 300


def test_vlan_9100_and_priority_bits() -> None:
    frame = (MACS + bytes.fromhex("9100" "e00a")  # TPID 0x9100, PCP 7, DEI 0, VID 10
             + bytes.fromhex("0800") + IP_TCP)
    got = row(frame)
    assert_ipv4_syn(got, 18)
    assert got["vlan"] == 10


def test_vlan_then_arp_keeps_vlan() -> None:
    frame = MACS + vlan_tag(0x8100, 42) + bytes.fromhex("0806") + bytes(28)
    assert_fields(row(frame), status=Status.NOT_IP, vlan=42)


def test_eight_vlan_tags_ok_nine_malformed() -> None:
    eight = MACS + vlan_tag(0x8100, 1) * 8 + bytes.fromhex("0800") + IP_TCP
    nine = MACS + vlan_tag(0x8100, 1) * 9 + bytes.fromhex("0800") + IP_TCP
    got8, got9 = rows([eight, nine])
    assert_ipv4_syn(got8, 14 + 32)
    assert_fields(got9, status=Status.MALFORMED, vlan=1, **NO_IP)


def test_vlan_cut_inside_tag() -> None:
    got = row(MACS + bytes.fromhex("8100" "00"))  # one byte of the TCI
    assert_fields(got, status=Status.TRUNCATED, vlan=-1, **NO_IP)
    got = row(MACS + bytes.fromhex("8100" "0064" "08"))  # TCI whole, type cut
    assert_fields(got, status=Status.TRUNCATED, vlan=100, **NO_IP)


# --- MPLS -------------------------------------------------------------------------

def test_mpls_one_label() -> None:
    frame = MACS + bytes.fromhex(
        "8847"  # ethertype MPLS unicast
        "00010140"  # label 16, TC 0, S 1 (bottom), TTL 64
    ) + IP_TCP
    assert_ipv4_syn(row(frame), 18)


def test_mpls_two_labels_ipv6() -> None:
    frame = MACS + bytes.fromhex(
        "8847"  # ethertype MPLS unicast
        "00011040"  # label 17, S 0
        "00012140"  # label 18, S 1 (bottom of stack)
    ) + IP6_TCP
    assert_fields(row(frame), status=Status.OK, l3_offset=22, ip_version=6, proto=6,
                  src_lo=V6_SRC_LO, src_port=50000, dst_port=80)


def test_mpls_pseudowire_control_word_is_not_ip() -> None:
    frame = MACS + bytes.fromhex(
        "8847" "00010140"  # one label, bottom of stack
        "00000000"  # pseudowire control word (RFC 4385): first nibble 0
    ) + MACS + bytes.fromhex("0800") + IP_TCP
    assert_fields(row(frame), status=Status.NOT_IP, **NO_IP)


def test_mpls_sixteen_labels_ok_seventeen_malformed() -> None:
    label, bottom = bytes.fromhex("00010040"), bytes.fromhex("00010140")
    ok = MACS + bytes.fromhex("8848") + label * 15 + bottom + IP_TCP  # multicast
    bad = MACS + bytes.fromhex("8847") + label * 16 + bottom + IP_TCP
    got_ok, got_bad = rows([ok, bad])
    assert_ipv4_syn(got_ok, 14 + 64)
    assert_fields(got_bad, status=Status.MALFORMED, **NO_IP)


def test_mpls_cut_inside_label() -> None:
    got = row(MACS + bytes.fromhex("8847" "000101"))
    assert_fields(got, status=Status.TRUNCATED, **NO_IP)


# --- PPPoE ------------------------------------------------------------------------

PPPOE_SESSION = bytes.fromhex(
    "8864"  # ethertype PPPoE session
    "11"  # version 1, type 1
    "00"  # code 0: session data
    "1234"  # session id
    "002a"  # length 42 = PPP protocol 2 + IP 40
)


def test_pppoe_session_ipv4() -> None:
    frame = MACS + PPPOE_SESSION + bytes.fromhex("0021") + IP_TCP  # PPP protocol IPv4
    assert_ipv4_syn(row(frame), 22)


def test_pppoe_session_ipv6() -> None:
    frame = MACS + PPPOE_SESSION + bytes.fromhex("0057") + IP6_TCP  # PPP protocol IPv6
    assert_fields(row(frame), status=Status.OK, ip_version=6, l3_offset=22, dst_port=80)


def test_pppoe_lcp_and_discovery_are_not_ip() -> None:
    lcp = MACS + PPPOE_SESSION + bytes.fromhex("c021") + bytes(10)  # PPP LCP
    padi = MACS + bytes.fromhex("8863" "1109" "0000" "0000")  # discovery PADI
    for got in rows([lcp, padi]):
        assert_fields(got, status=Status.NOT_IP, **NO_IP)


def test_pppoe_bad_version_is_malformed() -> None:
    frame = MACS + bytes.fromhex("8864" "22" "00" "1234" "002a" "0021") + IP_TCP
    assert_fields(row(frame), status=Status.MALFORMED, **NO_IP)


def test_pppoe_cut() -> None:
    assert_fields(row(MACS + PPPOE_SESSION[:5]), status=Status.TRUNCATED, **NO_IP)
    assert_fields(row(MACS + PPPOE_SESSION + b"\x00"), status=Status.TRUNCATED, **NO_IP)


# --- Linux cooked capture ---------------------------------------------------------

SLL = bytes.fromhex(
    "0000"  # packet type 0: to us
    "0001"  # ARPHRD_ETHER
    "0006"  # link-layer address length 6
    "00005e0053010000"  # address, padded to 8 bytes
)
SLL2_TAIL = bytes.fromhex(
    "0000"  # reserved
    "00000002"  # interface index 2
    "0001"  # ARPHRD_ETHER
    "00"  # packet type 0
    "06"  # address length 6
    "00005e0053010000"  # address, padded to 8 bytes
)


def test_sll_ipv4() -> None:
    frame = SLL + bytes.fromhex("0800") + IP_TCP  # protocol at bytes 14-15
    assert_ipv4_syn(row(frame, LINKTYPE_LINUX_SLL), 16)


def test_sll_with_vlan_protocol() -> None:
    frame = SLL[:14] + bytes.fromhex(
        "8100"  # SLL protocol: 802.1Q, a tag follows (no MACs in between)
        "0005"  # TCI: VID 5
        "0800"  # inner type IPv4
    ) + IP_TCP
    got = row(frame, LINKTYPE_LINUX_SLL)
    assert_ipv4_syn(got, 20)
    assert got["vlan"] == 5


def test_sll2_ipv6() -> None:
    frame = bytes.fromhex("86dd") + SLL2_TAIL + IP6_TCP  # protocol at bytes 0-1
    assert_fields(row(frame, LINKTYPE_LINUX_SLL2), status=Status.OK, l3_offset=20,
                  ip_version=6, src_port=50000)


@pytest.mark.parametrize(("linktype", "frame"), [
    (LINKTYPE_LINUX_SLL, SLL + b"\x08"),  # cut inside the protocol field
    (LINKTYPE_LINUX_SLL2, bytes.fromhex("0800") + SLL2_TAIL[:10]),
])
def test_cooked_cut(linktype: int, frame: bytes) -> None:
    assert_fields(row(frame, linktype), status=Status.TRUNCATED, **NO_IP)


def test_sll_arp_is_not_ip() -> None:
    assert_fields(row(SLL + bytes.fromhex("0806") + bytes(28), LINKTYPE_LINUX_SLL),
                  status=Status.NOT_IP)


# --- raw IP, loopback -------------------------------------------------------------

@pytest.mark.parametrize("linktype", [LINKTYPE_RAW, LINKTYPE_RAW_BSD12, LINKTYPE_RAW_BSD14,
                                      LINKTYPE_IPV4])
def test_raw_ipv4(linktype: int) -> None:
    assert_ipv4_syn(row(IP_TCP, linktype), 0)


@pytest.mark.parametrize("linktype", [LINKTYPE_RAW, LINKTYPE_RAW_BSD12, LINKTYPE_RAW_BSD14,
                                      LINKTYPE_IPV6])
def test_raw_ipv6(linktype: int) -> None:
    assert_fields(row(IP6_TCP, linktype), status=Status.OK, l3_offset=0, ip_version=6,
                  ip_len=60, l4_offset=40, src_port=50000)


def test_raw_bad_version_and_empty() -> None:
    bad, empty = rows([bytes([0x55]) + IP_TCP[1:], b""], LINKTYPE_RAW)
    assert_fields(bad, status=Status.MALFORMED, **NO_IP)
    assert_fields(empty, status=Status.TRUNCATED, **NO_IP)


@pytest.mark.parametrize(("family", "version"), [
    (b"\x02\x00\x00\x00", 4),  # AF_INET 2 written little endian (x86 host)
    (b"\x00\x00\x00\x02", 4),  # AF_INET 2 written big endian
    (b"\x18\x00\x00\x00", 6),  # AF_INET6 24 (NetBSD, OpenBSD), little endian
    (b"\x00\x00\x00\x1c", 6),  # AF_INET6 28 (FreeBSD), big endian
    (b"\x1e\x00\x00\x00", 6),  # AF_INET6 30 (macOS)
    (b"\x0a\x00\x00\x00", 6),  # AF_INET6 10 (Linux)
])
def test_null_both_byte_orders(family: bytes, version: int) -> None:
    frame = family + (IP_TCP if version == 4 else IP6_TCP)
    assert_fields(row(frame, LINKTYPE_NULL), status=Status.OK, ip_version=version,
                  l3_offset=4, dst_port=80)


def test_null_other_family_and_cut() -> None:
    other, cut = rows([b"\x07\x00\x00\x00" + IP_TCP, b"\x02\x00"], LINKTYPE_NULL)
    assert_fields(other, status=Status.NOT_IP, **NO_IP)
    assert_fields(cut, status=Status.TRUNCATED, **NO_IP)


def test_loop_network_order() -> None:
    v4, v6 = rows([b"\x00\x00\x00\x02" + IP_TCP, b"\x00\x00\x00\x18" + IP6_TCP], LINKTYPE_LOOP)
    assert_ipv4_syn(v4, 4)
    assert_fields(v6, status=Status.OK, ip_version=6, l3_offset=44 + 4)  # 2nd frame at 44
    little = row(b"\x02\x00\x00\x00" + IP_TCP, LINKTYPE_LOOP)  # LOOP is never host order
    assert_fields(little, status=Status.NOT_IP)


# --- PPP and HDLC -----------------------------------------------------------------

@pytest.mark.parametrize(("linktype", "head", "l3"), [
    (LINKTYPE_PPP, bytes.fromhex("ff03" "0021"), 4),  # address, control, protocol IPv4
    (LINKTYPE_PPP, bytes.fromhex("0021"), 2),  # address/control omitted (RFC 1661)
    (LINKTYPE_PPP, bytes.fromhex("21"), 1),  # compressed 1-byte protocol
    (LINKTYPE_PPP, bytes.fromhex("ff03" "21"), 3),
    (LINKTYPE_PPP_HDLC, bytes.fromhex("ff03" "0021"), 4),
    (LINKTYPE_PPP_HDLC, bytes.fromhex("0f00" "0800"), 4),  # Cisco HDLC framing in DLT 50
    (LINKTYPE_PPP, bytes.fromhex("8f00" "0800"), 4),  # ... and in DLT 9 (as tcpdump)
    (LINKTYPE_C_HDLC, bytes.fromhex("0f00" "0800"), 4),  # address unicast, control, type
    (LINKTYPE_C_HDLC, bytes.fromhex("8f00" "0800"), 4),  # address multicast
])
def test_ppp_and_hdlc_ipv4(linktype: int, head: bytes, l3: int) -> None:
    assert_ipv4_syn(row(head + IP_TCP, linktype), l3)


def test_ppp_ipv6_and_lcp() -> None:
    v6, lcp = rows([bytes.fromhex("ff03" "0057") + IP6_TCP,
                    bytes.fromhex("ff03" "c021") + bytes(8)], LINKTYPE_PPP)
    assert_fields(v6, status=Status.OK, ip_version=6, l3_offset=4)
    assert_fields(lcp, status=Status.NOT_IP, **NO_IP)


def test_ppp_and_hdlc_cut() -> None:
    ppp_cut, = rows([bytes.fromhex("ff03" "00")], LINKTYPE_PPP)
    ff_only, = rows([bytes.fromhex("ff")], LINKTYPE_PPP)
    hdlc_cut, slarp = rows([bytes.fromhex("0f0008"), bytes.fromhex("8f008035") + bytes(20)],
                           LINKTYPE_C_HDLC)
    for got in (ppp_cut, ff_only, hdlc_cut):
        assert_fields(got, status=Status.TRUNCATED, **NO_IP)
    assert_fields(slarp, status=Status.NOT_IP, **NO_IP)  # Cisco SLARP keepalive


# --- PPI --------------------------------------------------------------------------

def ppi(dlt: int, length: int = 8, fields: bytes = b"") -> bytes:
    """PPI header: version, flags, length (LE), wrapped DLT (LE), then fields."""
    return bytes([0, 0]) + length.to_bytes(2, "little") + dlt.to_bytes(4, "little") + fields


def test_ppi_wraps_ethernet() -> None:
    field = bytes.fromhex("0200" "0400" "00000000")  # a 4-byte PPI field (type 2, len 4)
    frame = ppi(LINKTYPE_ETHERNET, 16, field) + ETH_IPV4 + IP_TCP
    assert_ipv4_syn(row(frame, LINKTYPE_PPI), 16 + 14)


def test_ppi_mixed_inner_types() -> None:
    eth = ppi(LINKTYPE_ETHERNET) + ETH_IPV4 + IP_TCP
    raw = ppi(LINKTYPE_RAW) + IP_TCP
    wifi = ppi(105) + bytes(30)  # 802.11: not decoded
    nested = ppi(LINKTYPE_PPI) + ppi(LINKTYPE_RAW) + IP_TCP
    got = rows([eth, raw, wifi, nested], LINKTYPE_PPI)
    assert_ipv4_syn(got[0], 22)
    assert_ipv4_syn(got[1], len(eth) + 8)
    assert_fields(got[2], status=Status.UNSUPPORTED_LINK, **NO_IP)
    assert_fields(got[3], status=Status.UNSUPPORTED_LINK, **NO_IP)


def test_ppi_bad_length_and_cut() -> None:
    short_len = ppi(LINKTYPE_ETHERNET, 4) + ETH_IPV4 + IP_TCP  # length < 8
    past_end = ppi(LINKTYPE_ETHERNET, 400) + ETH_IPV4 + IP_TCP  # length beyond the frame
    cut = ppi(LINKTYPE_ETHERNET)[:6]
    bad, past, c = rows([short_len, past_end, cut], LINKTYPE_PPI)
    assert_fields(bad, status=Status.MALFORMED, **NO_IP)
    assert_fields(past, status=Status.TRUNCATED, **NO_IP)
    assert_fields(c, status=Status.TRUNCATED, **NO_IP)


# --- everything else ----------------------------------------------------------------

@pytest.mark.parametrize("linktype", [105, 127, 147, 999])  # 802.11, radiotap, user0, unknown
def test_unsupported_link_type(linktype: int) -> None:
    got = rows([eth_ipv4_tcp(), b"", IP_TCP], linktype)
    for g in got:
        assert_fields(g, status=Status.UNSUPPORTED_LINK, **NO_IP)
    assert [g["record"] for g in got] == [0, 1, 2]


def test_records_timestamps_lengths_copied() -> None:
    from tracker.decode import decode
    from tracker.frames import FrameBatch

    fb = FrameBatch.from_frames([eth_ipv4_tcp(), b"\x00"], ts_ns=[5, -7],
                                wire_len=[1514, 60], first_record=41)
    pb = decode(fb)
    assert pb.record.tolist() == [41, 42]
    assert pb.ts_ns.tolist() == [5, -7]
    assert pb.wire_len.tolist() == [1514, 60]
    assert pb.caplen.tolist() == [54, 1]
    assert pb.status.tolist() == [Status.OK, Status.TRUNCATED]


def test_empty_batch() -> None:
    from tracker.decode import decode
    from tracker.frames import FrameBatch

    assert len(decode(FrameBatch.from_frames([]))) == 0
