"""Ethernet and what rides in it: 802.3/LLC/SNAP, VLAN tags, MPLS, PPPoE; cuts and nonsense.

Each test frame carries the same IPv4/TCP SYN (tests/decode/decode_frames.py)
behind a different link header, so a right decode ends with the same
addresses and ports; the link header's own length gives the expected
``l3_offset``.
"""

from __future__ import annotations

import pytest
from decode_frames import (
    ETH_IPV4,
    IP6_TCP,
    IP_TCP,
    MACS,
    NO_IP,
    V6_SRC_LO,
    assert_fields,
    assert_ipv4_syn,
    eth_ipv4_tcp,
    row,
    rows,
)

from tracker.packets import Status

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


# --- Cisco FabricPath -------------------------------------------------------------

def test_fabricpath_wraps_an_ethernet_frame() -> None:
    frame = MACS + bytes.fromhex(
        "8903"  # ethertype Cisco FabricPath
        "4020"  # FTag 256, TTL 32
        "00005e005303" "00005e005304"  # the original destination and source MACs
        "8100" "0007"  # the original frame's 802.1Q tag, VID 7
        "0800"  # inner type IPv4
    ) + IP_TCP
    got = row(frame)
    assert_ipv4_syn(got, 14 + 16 + 4)  # outer Ethernet, FabricPath to the inner type, tag
    assert got["vlan"] == 7


def test_fabricpath_cut() -> None:
    frame = MACS + bytes.fromhex("8903" "4020" "00005e005303")
    assert_fields(row(frame), status=Status.TRUNCATED, **NO_IP)


# --- IEEE 802.1ah PBB and Cisco VN-Tag (as Zeek: ZEEK-FACTS 7.5, 7.6) -------------

PBB_ITAG = bytes.fromhex(
    "88e7"  # ethertype 802.1ah
    "00012345"  # I-TAG: PCP 0, DEI 0, UCA 0, I-SID 0x012345
    "00005e005305" "00005e005306"  # customer destination and source MACs
)


def test_pbb_behind_a_vlan_tag_carries_a_tagged_customer_frame() -> None:
    # As ../shared/tunnels/pbb: Ethernet / 802.1Q 4051 / PBB / 802.1Q 4020 / IPv4.
    frame = MACS + bytes.fromhex("8100" "0fd3") + PBB_ITAG + bytes.fromhex(
        "8100" "0fb4" "0800") + IP_TCP
    got = row(frame)
    assert_ipv4_syn(got, 14 + 4 + 18 + 4)  # Ethernet, tag, I-TAG to the type, customer tag
    assert got["vlan"] == 4051  # the outermost tag


def test_pbb_straight_to_ipv4_and_cuts() -> None:
    assert_ipv4_syn(row(MACS + PBB_ITAG + bytes.fromhex("0800") + IP_TCP), 14 + 18)
    for cut in (6, 17):  # inside the I-TAG; just before the customer type's last byte
        frame = MACS + (PBB_ITAG + bytes.fromhex("0800"))[:cut]
        assert_fields(row(frame), status=Status.TRUNCATED, **NO_IP)


VN_TAG = bytes.fromhex(
    "8926"  # ethertype VN-Tag
    "80010002"  # direction 1, destination VIF 1, source VIF 2
)


def test_vn_tag_then_a_vlan_tag() -> None:
    # As ../shared/tunnels/vntag: Ethernet / VN-Tag / 802.1Q 11 / IPv4.
    got = row(MACS + VN_TAG + bytes.fromhex("8100" "000b" "0800") + IP_TCP)
    assert_ipv4_syn(got, 14 + 6 + 4)
    assert got["vlan"] == 11


def test_vn_tag_then_ip_is_not_decoded_as_in_zeek() -> None:
    # Zeek's VN-Tag table names only VLAN tags after it (vntag/main.zeek L5-7).
    assert_fields(row(MACS + VN_TAG + bytes.fromhex("0800") + IP_TCP), status=Status.NOT_IP,
                  **NO_IP)


def test_vn_tag_cut() -> None:
    assert_fields(row(MACS + VN_TAG[:4]), status=Status.TRUNCATED, **NO_IP)
    assert_fields(row(MACS + VN_TAG + bytes.fromhex("81")), status=Status.TRUNCATED, **NO_IP)
