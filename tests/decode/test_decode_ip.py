"""IPv4 and IPv6: options, fragments, extension header chains, cuts and nonsense."""

from __future__ import annotations

import pytest
from decode_frames import (
    ETH_IPV4,
    ETH_IPV6,
    NO_IP,
    NO_L4,
    TCP_SYN,
    UDP_DNS,
    V4_DST_LO,
    V4_SRC_LO,
    V6_DST_HI,
    V6_DST_LO,
    V6_SRC_HI,
    V6_SRC_LO,
    assert_fields,
    ipv4,
    ipv6,
    row,
)

from tracker.packets import Status

# --- IPv4 ---------------------------------------------------------------------------


def test_ipv4_fields() -> None:
    got = row(ETH_IPV4 + ipv4(40, 6, ident=0xBEEF) + TCP_SYN)
    assert_fields(got, status=Status.OK, ip_version=4, ip_hdr_len=20, ip_len=40, proto=6,
                  ip_id=0xBEEF, frag_offset=0, more_fragments=False, src_hi=0,
                  src_lo=V4_SRC_LO, dst_hi=0, dst_lo=V4_DST_LO, l3_offset=14, l4_offset=34)


def test_ipv4_with_options() -> None:
    options = bytes.fromhex(
        "94040000"  # router alert option (RFC 2113): type 148, length 4, value 0
        "01010100"  # NOP, NOP, NOP, end of options list
    )
    frame = ETH_IPV4 + ipv4(28 + 20, 17, ver_ihl=0x47, options=options) + UDP_DNS
    got = row(frame)
    assert_fields(got, status=Status.OK, ip_hdr_len=28, ip_len=48, l4_offset=14 + 28,
                  src_port=54321, dst_port=53, udp_len=20, payload_len=12)


def test_ip_len_is_the_length_field_not_caplen() -> None:
    # A 1500-byte packet cut by the snaplen after the TCP header.
    got = row(ETH_IPV4 + ipv4(1500, 6) + TCP_SYN, wire_len=1514)
    assert_fields(got, status=Status.OK, ip_len=1500, payload_len=1460, wire_len=1514,
                  caplen=54)


def test_ipv4_first_fragment_keeps_ports() -> None:
    # MF set, offset 0: the UDP header is here; 20 bytes of UDP in this fragment.
    frame = ETH_IPV4 + ipv4(40, 17, ident=7, flags_frag=0x2000) + UDP_DNS
    assert_fields(row(frame), status=Status.FRAGMENT, ip_id=7, frag_offset=0,
                  more_fragments=True, src_port=54321, dst_port=53, udp_len=20,
                  payload_len=12, l4_offset=34)


def test_ipv4_later_fragment_has_no_transport() -> None:
    # MF clear, offset 185 (185 * 8 = 1480 bytes): the last fragment.
    frame = ETH_IPV4 + ipv4(20 + 16, 17, ident=7, flags_frag=0x00B9) + bytes(16)
    assert_fields(row(frame), status=Status.FRAGMENT, ip_id=7, frag_offset=1480,
                  more_fragments=False, proto=17, ip_len=36, l4_offset=-1,
                  payload_len=16, **NO_L4)


def test_ipv4_middle_fragment() -> None:
    frame = ETH_IPV4 + ipv4(20 + 8, 6, flags_frag=0x2001) + bytes(8)  # MF, offset 8 bytes
    assert_fields(row(frame), status=Status.FRAGMENT, frag_offset=8, more_fragments=True,
                  payload_len=8, **NO_L4)


def test_first_fragment_too_short_for_tcp_stays_fragment() -> None:
    # MF, offset 0, only 8 bytes of TCP in this fragment: ports yes, the rest unknown.
    frame = ETH_IPV4 + ipv4(28, 6, flags_frag=0x2000) + TCP_SYN[:8] + bytes(18)  # + padding
    assert_fields(row(frame), status=Status.FRAGMENT, src_port=50000, dst_port=80, seq=100,
                  ack=0, tcp_hdr_len=-1, window=-1, payload_len=-1)


@pytest.mark.parametrize(("ver_ihl", "total"), [
    (0x44, 40),  # IHL 4 (< 5)
    (0x40, 40),  # IHL 0
    (0x45, 19),  # total length below the header length
    (0x46, 20),  # total length 20 but IHL 6 says 24
])
def test_ipv4_nonsense_is_malformed(ver_ihl: int, total: int) -> None:
    frame = ETH_IPV4 + ipv4(total, 6, ver_ihl=ver_ihl, options=bytes(4)) + TCP_SYN
    got = row(frame)
    assert_fields(got, status=Status.MALFORMED, ip_len=total, ip_hdr_len=(ver_ihl & 15) * 4,
                  src_lo=V4_SRC_LO, **NO_L4)


@pytest.mark.parametrize("ethertype", [ETH_IPV4, ETH_IPV6])
@pytest.mark.parametrize("version", [0, 5, 15])
def test_an_ip_version_neither_4_nor_6_is_malformed_without_ip_columns(
        ethertype: bytes, version: int) -> None:
    # Zeek's IP analyzer drops it (weird unknown_ip_version, IP.cc L47-63), and tshark
    # shows no address of it: its bytes are no IP header.
    got = row(ethertype + ipv4(40, 6, ver_ihl=version << 4 | 5) + TCP_SYN)
    assert_fields(got, status=Status.MALFORMED, **NO_IP)


def test_the_version_nibble_decides_ipv4_or_ipv6_whatever_the_ethertype() -> None:
    # Zeek's IP analyzer reads IPv4 and IPv6 by the version (IP.cc L47-63) behind
    # either ethertype; tshark too decodes an IPv6 header behind ethertype 0x0800.
    v6 = row(ETH_IPV4 + ipv6(20, 17) + UDP_DNS)
    assert_fields(v6, status=Status.OK, ip_version=6, ip_len=60, proto=17, src_hi=V6_SRC_HI,
                  src_lo=V6_SRC_LO, dst_port=53, l4_offset=54)
    v4 = row(ETH_IPV6 + ipv4(40, 6) + TCP_SYN)
    assert_fields(v4, status=Status.OK, ip_version=4, ip_len=40, proto=6, src_hi=0,
                  src_lo=V4_SRC_LO, dst_port=80, l4_offset=34)


def test_ipv4_total_length_zero_takes_the_payload_from_the_captured_bytes() -> None:
    # TSO captures write 0 here (the NIC fills it in later). Zeek counts the 0 in ip_bytes
    # and takes the transport from every captured byte after the IP header, Ethernet
    # padding included (ZEEK-FACTS 9.2): a SYN padded to 60 bytes has 6 bytes of payload.
    got = row(ETH_IPV4 + ipv4(0, 6) + TCP_SYN)
    assert_fields(got, status=Status.OK, ip_len=0, payload_len=0, src_port=50000, dst_port=80)
    padded = row(ETH_IPV4 + ipv4(0, 6) + TCP_SYN + bytes(6))
    assert_fields(padded, status=Status.OK, ip_len=0, payload_len=6)


def test_ipv4_total_length_zero_cut_in_the_tcp_header() -> None:
    frame = ETH_IPV4 + ipv4(0, 6) + TCP_SYN
    got = row(frame[:40], wire_len=len(frame))
    assert_fields(got, status=Status.TRUNCATED, ip_len=0)


@pytest.mark.parametrize(("cut", "kept", "gone"), [
    (1, {"ip_version": 4, "ip_hdr_len": 20}, ["ip_len", "ip_id", "proto"]),
    (4, {"ip_len": 40}, ["ip_id", "proto", "src_lo"]),
    (10, {"ip_id": 0x1C46, "proto": 6, "more_fragments": False}, ["src_lo", "dst_lo"]),
    (16, {"src_lo": V4_SRC_LO}, ["dst_lo"]),
    (19, {"src_lo": V4_SRC_LO}, ["dst_lo"]),
])
def test_ipv4_cut_inside_header(cut: int, kept: dict, gone: list[str]) -> None:
    got = row((ETH_IPV4 + ipv4(40, 6) + TCP_SYN)[:14 + cut])
    assert_fields(got, status=Status.TRUNCATED, l4_offset=-1, **kept)
    none = {"ip_len": -1, "ip_id": -1, "proto": -1, "src_lo": 0, "dst_lo": 0}
    assert_fields(got, **{k: none[k] for k in gone})


def test_ipv4_cut_inside_options() -> None:
    frame = ETH_IPV4 + ipv4(44, 6, ver_ihl=0x46, options=bytes.fromhex("01010100")) + TCP_SYN
    got = row(frame[:14 + 22])  # fixed header whole, options cut
    assert_fields(got, status=Status.TRUNCATED, ip_hdr_len=24, ip_len=44, proto=6,
                  dst_lo=V4_DST_LO, l4_offset=-1, **NO_L4)


def test_ipv4_nonsense_before_the_cut_wins() -> None:
    got = row((ETH_IPV4 + ipv4(40, 6, ver_ihl=0x43))[:14 + 3])  # IHL 3, cut at 3 bytes
    assert_fields(got, status=Status.MALFORMED, ip_hdr_len=12)


# --- IPv6 ---------------------------------------------------------------------------


def test_ipv6_fields() -> None:
    got = row(ETH_IPV6 + ipv6(20, 6) + TCP_SYN)
    assert_fields(got, status=Status.OK, ip_version=6, ip_hdr_len=40, ip_len=60, proto=6,
                  src_hi=V6_SRC_HI, src_lo=V6_SRC_LO, dst_hi=V6_DST_HI, dst_lo=V6_DST_LO,
                  ip_id=-1, l3_offset=14, l4_offset=54, src_port=50000, payload_len=0)


HOP_BY_HOP = bytes.fromhex(
    "2b"  # next header 43: routing
    "00"  # length 0: (0 + 1) * 8 = 8 bytes
    "0104" "00000000"  # PadN option, 4 bytes of padding
)
ROUTING = bytes.fromhex(
    "3c"  # next header 60: destination options
    "00"  # length 0: 8 bytes
    "04"  # routing type 4 (segment routing)
    "00"  # segments left 0
    "00000000"  # type-specific data
)
DEST_OPTS = bytes.fromhex(
    "2c"  # next header 44: fragment
    "01"  # length 1: (1 + 1) * 8 = 16 bytes
    "010c" + "00" * 12  # PadN, 12 bytes of padding
)


def fragment_header(next_header: int, offset_units: int, more: bool, ident: int) -> bytes:
    """IPv6 fragment header (RFC 8200 section 4.5)."""
    return (bytes([next_header, 0])  # next header, reserved
            + ((offset_units << 3) | int(more)).to_bytes(2, "big")  # offset | res | M
            + ident.to_bytes(4, "big"))  # identification


def test_ipv6_extension_chain_to_tcp() -> None:
    chain = HOP_BY_HOP + ROUTING + DEST_OPTS + fragment_header(6, 0, True, 0xCAFE)
    frame = ETH_IPV6 + ipv6(len(chain) + 20, 0) + chain + TCP_SYN  # first header: hop-by-hop
    assert_fields(row(frame), status=Status.FRAGMENT, proto=6, ip_hdr_len=40 + 40,
                  ip_len=40 + 40 + 20, ip_id=0xCAFE, frag_offset=0, more_fragments=True,
                  l4_offset=14 + 80, src_port=50000, dst_port=80, payload_len=0)


def test_ipv6_later_fragment() -> None:
    chain = fragment_header(17, 181, False, 99)  # offset 181 * 8 = 1448 bytes, last one
    frame = ETH_IPV6 + ipv6(8 + 100, 44) + chain + bytes(100)
    assert_fields(row(frame), status=Status.FRAGMENT, proto=17, ip_hdr_len=48, ip_id=99,
                  frag_offset=1448, more_fragments=False, payload_len=100, l4_offset=-1,
                  **NO_L4)


def test_ipv6_ah_then_udp() -> None:
    ah = bytes.fromhex(
        "11"  # next header 17: UDP
        "04"  # payload length 4: (4 + 2) * 4 = 24 bytes (RFC 4302 section 2.2)
        "0000"  # reserved
        "00000100"  # SPI
        "00000001"  # sequence number
    ) + bytes(12)  # 96-bit ICV
    frame = ETH_IPV6 + ipv6(24 + 20, 51) + ah + UDP_DNS
    assert_fields(row(frame), status=Status.OK, proto=17, ip_hdr_len=64, dst_port=53,
                  payload_len=12)


def test_ipv6_no_next_header() -> None:
    got = row(ETH_IPV6 + ipv6(0, 59))  # payload length 0 is fine with nothing following
    assert_fields(got, status=Status.OK, proto=59, ip_len=40, payload_len=0, **NO_L4)


def test_ipv6_payload_length_zero_reads_the_rest_of_the_frame_but_tcp() -> None:
    # ZEEK-FACTS 9.4: accepted, TotalLen 40; UDP and ICMP take the captured bytes, an
    # unknown protocol is a 40-byte packet; TCP's header is read from the frame (Zeek keys
    # its connection on it) but its segment is dropped (a 0-byte payload cannot hold it:
    # MALFORMED, payload 0), also behind a jumbo hop-by-hop header.
    syn = {"src_port": 50000, "dst_port": 80, "tcp_flags": 0x02, "seq": 100, "payload_len": 0}
    jumbo = row(ETH_IPV6 + ipv6(0, 0) + bytes.fromhex("0600c2040001000a") + TCP_SYN)
    assert_fields(jumbo, status=Status.MALFORMED, ip_len=40, proto=6, **syn)
    tcp = row(ETH_IPV6 + ipv6(0, 6) + TCP_SYN)
    assert_fields(tcp, status=Status.MALFORMED, ip_len=40, proto=6, **syn)
    udp = row(ETH_IPV6 + ipv6(0, 17) + UDP_DNS)
    assert_fields(udp, status=Status.OK, ip_len=40, proto=17, dst_port=53, payload_len=12)
    other = row(ETH_IPV6 + ipv6(0, 99) + bytes(10))
    assert_fields(other, status=Status.OK, ip_len=40, proto=99)


def test_ipv6_chain_past_payload_length_is_malformed() -> None:
    # Destination options claims (2 + 1) * 8 = 24 bytes; the payload length says 16.
    frame = ETH_IPV6 + ipv6(16, 60) + bytes.fromhex("0602") + bytes(30)
    assert_fields(row(frame), status=Status.MALFORMED, ip_len=56, proto=-1, ip_hdr_len=-1,
                  **NO_L4)


def test_ipv6_seventeen_extension_headers_are_malformed() -> None:
    opts = bytes.fromhex("3c00" "010400000000")  # dest options -> dest options, 8 bytes
    sixteen = opts * 15 + bytes.fromhex("0600" "010400000000")  # the 16th leads to TCP
    ok = ETH_IPV6 + ipv6(16 * 8 + 20, 60) + sixteen + TCP_SYN
    bad = ETH_IPV6 + ipv6(17 * 8 + 20, 60) + opts * 16 + bytes.fromhex("0600") + bytes(6) \
        + TCP_SYN
    got_ok, got_bad = row(ok), row(bad)
    assert_fields(got_ok, status=Status.OK, proto=6, ip_hdr_len=40 + 128, dst_port=80)
    assert_fields(got_bad, status=Status.MALFORMED, proto=-1, **NO_L4)


@pytest.mark.parametrize(("cut", "kept", "gone"), [
    (5, {"ip_version": 6}, ["ip_len", "src_hi", "proto"]),
    (6, {"ip_len": 60}, ["src_hi", "proto"]),
    (7, {"proto": 6}, ["src_hi"]),  # the Next Header byte (6) is in, as IPv4's protocol
    (20, {"src_hi": V6_SRC_HI, "proto": 6}, ["src_lo", "dst_hi"]),
    (39, {"src_lo": V6_SRC_LO, "dst_hi": V6_DST_HI, "proto": 6}, ["dst_lo"]),
])
def test_ipv6_cut_inside_header(cut: int, kept: dict, gone: list[str]) -> None:
    got = row((ETH_IPV6 + ipv6(20, 6) + TCP_SYN)[:14 + cut])
    assert_fields(got, status=Status.TRUNCATED, l4_offset=-1, **kept)
    none = {"ip_len": -1, "src_hi": 0, "src_lo": 0, "dst_hi": 0, "dst_lo": 0, "proto": -1}
    assert_fields(got, **{k: none[k] for k in gone})


def test_ipv6_cut_inside_header_before_an_extension_header_has_no_protocol() -> None:
    # Next Header 0 (hop-by-hop options) names no transport: the transport is unknown.
    got = row((ETH_IPV6 + ipv6(20 + 8, 0) + HOP_BY_HOP)[:14 + 39])
    assert_fields(got, status=Status.TRUNCATED, proto=-1, l4_offset=-1)


def test_ipv6_cut_inside_extension_headers() -> None:
    routing_to_fragment = bytes([44]) + ROUTING[1:]  # next header 44
    chain = HOP_BY_HOP + routing_to_fragment + fragment_header(6, 0, True, 5)
    frame = ETH_IPV6 + ipv6(len(chain) + 20, 0) + chain + TCP_SYN
    in_routing = row(frame[:14 + 40 + 8 + 1])  # one byte of the routing header
    in_fragment = row(frame[:14 + 40 + 16 + 5])  # fragment header cut
    for got in (in_routing, in_fragment):
        assert_fields(got, status=Status.TRUNCATED, ip_len=40 + 24 + 20, proto=-1,
                      ip_hdr_len=-1, src_lo=V6_SRC_LO, dst_lo=V6_DST_LO, **NO_L4)
    assert in_fragment["ip_id"] == -1


def test_not_ip_rows_leave_ip_columns_empty() -> None:
    got = row(ETH_IPV4[:12] + bytes.fromhex("0806") + bytes(28))
    assert_fields(got, status=Status.NOT_IP, **NO_IP)
