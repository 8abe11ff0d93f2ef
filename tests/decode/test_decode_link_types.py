"""Link types other than Ethernet: cooked, raw IP, loopback, PPP, HDLC, PPI, unsupported.

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
    NO_IP,
    assert_fields,
    assert_ipv4_syn,
    eth_ipv4_tcp,
    row,
    rows,
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
    cut = row(b"\x00\x00\x00", LINKTYPE_LOOP)  # 3 of the 4 family bytes
    assert_fields(cut, status=Status.TRUNCATED, **NO_IP)


# --- Linux NFLOG (tcpdump.org/linktypes/LINKTYPE_NFLOG.html; Zeek's NFLog.cc) -------


def nflog_tlv(kind: int, value: bytes, little: bool = True) -> bytes:
    """One TLV: length (4 + value) and type in the capturing host's order, then the
    value padded to 4 bytes (the padding is not in the length)."""
    order = "little" if little else "big"
    head = (4 + len(value)).to_bytes(2, order) + kind.to_bytes(2, order)
    return head + value + bytes(-len(value) % 4)


def nflog(packet: bytes, family: int = 2, little: bool = True, version: int = 0) -> bytes:
    prefix = nflog_tlv(1, bytes.fromhex("0800" "03" "00"), little)  # NFULA_PACKET_HDR
    prefix += nflog_tlv(10, b"cpu\x00a", little)  # NFULA_PREFIX, 5 bytes: 3 of padding
    return bytes([family, version]) + b"\x00\x2a" + prefix + nflog_tlv(9, packet, little)


@pytest.mark.parametrize("little", [True, False])
def test_nflog_reads_the_payload_tlv_in_either_byte_order(little: bool) -> None:
    # The header (4), a packet header TLV (4 + 4) and a prefix TLV (4 + 5 + 3 padding),
    # then the payload TLV's own 4 bytes: the packet at 4 + 8 + 12 + 4 = 28.
    v4 = row(nflog(IP_TCP, little=little), LINKTYPE_NFLOG)
    assert_ipv4_syn(v4, 28)
    v6 = row(nflog(IP6_TCP, family=10, little=little), LINKTYPE_NFLOG)
    assert_fields(v6, status=Status.OK, ip_version=6, l3_offset=28, dst_port=80)


def test_nflog_frames_that_hold_no_packet() -> None:
    arp, version1, cut, bad_length, past_end, no_payload = rows([
        nflog(IP_TCP, family=7),  # not AF_INET / AF_INET6: Zeek has no analyzer for it
        nflog(IP_TCP, version=1),  # weird unknown_nflog_version
        b"\x02\x00\x00\x2a",  # the header alone: truncated_nflog_header
        nflog(IP_TCP)[:4] + b"\x02\x00\x01\x00" + bytes(8),  # TLV length 2 < 4
        nflog(IP_TCP)[:4] + b"\x00\x01\x01\x00" + bytes(8),  # 256 bytes past the end
        nflog(IP_TCP)[:4 + 8],  # the TLVs end before the payload one
    ], LINKTYPE_NFLOG)
    assert_fields(arp, status=Status.NOT_IP, **NO_IP)
    for got in (version1, bad_length, past_end):
        assert_fields(got, status=Status.MALFORMED, **NO_IP)
    for got in (cut, no_payload):
        assert_fields(got, status=Status.TRUNCATED, **NO_IP)


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
    wifi = ppi(105) + bytes(30)  # 802.11, frame control 0: a management frame
    nested = ppi(LINKTYPE_PPI) + ppi(LINKTYPE_RAW) + IP_TCP
    got = rows([eth, raw, wifi, nested], LINKTYPE_PPI)
    assert_ipv4_syn(got[0], 22)
    assert_ipv4_syn(got[1], len(eth) + 8)
    assert_fields(got[2], status=Status.NOT_IP, **NO_IP)
    assert_fields(got[3], status=Status.UNSUPPORTED_LINK, **NO_IP)


def test_ppi_bad_length_and_cut() -> None:
    short_len = ppi(LINKTYPE_ETHERNET, 4) + ETH_IPV4 + IP_TCP  # length < 8
    past_end = ppi(LINKTYPE_ETHERNET, 400) + ETH_IPV4 + IP_TCP  # length beyond the frame
    cut = ppi(LINKTYPE_ETHERNET)[:6]
    bad, past, c = rows([short_len, past_end, cut], LINKTYPE_PPI)
    assert_fields(bad, status=Status.MALFORMED, **NO_IP)
    assert_fields(past, status=Status.TRUNCATED, **NO_IP)
    assert_fields(c, status=Status.TRUNCATED, **NO_IP)


# --- IEEE 802.11, radiotap, FDDI (as Zeek: ZEEK-FACTS 7.1, 7.2, 7.4) -----------------

SNAP_IPV4 = bytes.fromhex("aaaa03" "000000" "0800")  # LLC/SNAP, OUI 0, ethertype IPv4
WLAN_MACS = bytes.fromhex("00005e005301" "00005e005302" "00005e005303")


def wlan(fc0: int, fc1: int, *, addr4: bool = False, qos: bytes = b"") -> bytes:
    """An 802.11 header: frame control, duration, 3 addresses, sequence control, [addr 4],
    [QoS control]."""
    head = bytes([fc0, fc1]) + bytes.fromhex("2c00") + WLAN_MACS + bytes.fromhex("1000")
    return head + (bytes.fromhex("00005e005304") if addr4 else b"") + qos


DATA, QOS_DATA = 0x08, 0x88  # type 2 (data), subtypes 0 and 8
FROM_DS, BOTH_DS, PROTECTED = 0x02, 0x03, 0x40


@pytest.mark.parametrize(("head", "l3"), [
    (wlan(DATA, FROM_DS), 24 + 8),  # data frame from the AP: 3 addresses
    (wlan(QOS_DATA, FROM_DS, qos=bytes.fromhex("0000")), 26 + 8),  # + QoS control
    (wlan(DATA, BOTH_DS, addr4=True), 30 + 8),  # WDS: 4 addresses
    (wlan(QOS_DATA, BOTH_DS, addr4=True, qos=bytes.fromhex("0500")), 32 + 8),
])
def test_80211_data_frames(head: bytes, l3: int) -> None:
    assert_ipv4_syn(row(head + SNAP_IPV4 + IP_TCP, LINKTYPE_IEEE802_11), l3)


def test_80211_frames_without_ip() -> None:
    beacon = wlan(0x80, 0x00) + bytes(40)  # management, subtype 8
    ack = bytes.fromhex("d400" "0000" "00005e005301") + bytes(20)  # control: ACK
    null = wlan(0x48, 0x01) + bytes(8)  # data subtype 4: Null, no body
    arp = wlan(DATA, FROM_DS) + bytes.fromhex("aaaa03" "000000" "0806") + bytes(28)
    got = rows([beacon, ack, null, arp], LINKTYPE_IEEE802_11)
    for g in got:
        assert_fields(g, status=Status.NOT_IP, **NO_IP)


def test_80211_protected_frames_are_counted_not_decoded() -> None:
    ccmp = bytes.fromhex("0100002000000000")  # CCMP header: ciphertext follows
    protected = wlan(QOS_DATA, FROM_DS | PROTECTED, qos=bytes(2)) + ccmp + bytes(60)
    legacy = wlan(DATA, FROM_DS | PROTECTED) + ccmp + bytes(60)
    amsdu = wlan(QOS_DATA, FROM_DS | PROTECTED, qos=bytes.fromhex("8000")) + ccmp + bytes(60)
    for got in rows([protected, legacy, amsdu], LINKTYPE_IEEE802_11):
        assert_fields(got, status=Status.ENCRYPTED, **NO_IP)


def test_an_80211_amsdu_is_decoded_to_its_first_packet() -> None:
    """QoS Control's 0x80 bit: subframes of DA, SA and a length (14 bytes), each then
    LLC/SNAP and a packet; the frame's row is its first packet (the flow table's tunnel
    step adds the others: tests/decode/test_tunnels.py), not IP when that one is not."""
    qos_amsdu = wlan(QOS_DATA, FROM_DS, qos=bytes.fromhex("8000"))
    length = (len(SNAP_IPV4) + len(IP_TCP)).to_bytes(2, "big")
    first = bytes(12) + length + SNAP_IPV4 + IP_TCP
    assert_ipv4_syn(row(qos_amsdu + first + first, LINKTYPE_IEEE802_11), 26 + 14 + 8)
    assert_fields(row(qos_amsdu + bytes(60), LINKTYPE_IEEE802_11), status=Status.NOT_IP, **NO_IP)


def test_80211_cut() -> None:
    whole = wlan(QOS_DATA, BOTH_DS, addr4=True, qos=bytes(2)) + SNAP_IPV4 + IP_TCP
    # Zeek needs more than 24 bytes; cut in the fixed part, in address 4, in QoS, in SNAP.
    for cut in (10, 24, 28, 31, 36):
        assert_fields(row(whole[:cut], LINKTYPE_IEEE802_11), status=Status.TRUNCATED, **NO_IP)


def radiotap_header(length: int = 12) -> bytes:
    """Radiotap: version 0, pad, length (LE), present flags, then length - 8 field bytes."""
    return bytes([0, 0]) + length.to_bytes(2, "little") + bytes.fromhex("04000000") \
        + bytes(length - 8)


def test_radiotap_skips_its_length_then_80211() -> None:
    frame = radiotap_header(18) + wlan(QOS_DATA, FROM_DS, qos=bytes(2)) + SNAP_IPV4 + IP_TCP
    assert_ipv4_syn(row(frame, LINKTYPE_IEEE802_11_RADIOTAP), 18 + 26 + 8)


def test_radiotap_bad_length_and_cut() -> None:
    too_long = radiotap_header(12)[:2] + (200).to_bytes(2, "little") + bytes(40)
    too_short = bytes([0, 0]) + (2).to_bytes(2, "little") + bytes(40)
    cut = radiotap_header(12)[:3]
    past, short, c = rows([too_long, too_short, cut], LINKTYPE_IEEE802_11_RADIOTAP)
    assert_fields(past, status=Status.TRUNCATED, **NO_IP)
    assert_fields(short, status=Status.MALFORMED, **NO_IP)
    assert_fields(c, status=Status.TRUNCATED, **NO_IP)


FDDI = bytes.fromhex("50" "00005e005301" "00005e005302" "aaaa03000000" "0800")  # 21 bytes


def test_fddi_skips_21_bytes_to_ip() -> None:
    assert_ipv4_syn(row(FDDI + IP_TCP, LINKTYPE_FDDI), 21)
    assert_fields(row(FDDI[:15], LINKTYPE_FDDI), status=Status.TRUNCATED, **NO_IP)
    assert_fields(row(FDDI + bytes(28), LINKTYPE_FDDI), status=Status.NOT_IP, **NO_IP)


# --- everything else ----------------------------------------------------------------

@pytest.mark.parametrize("linktype", [147, 999])  # user0, unknown
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
