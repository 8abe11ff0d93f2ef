"""TCP, UDP, ICMP, ICMPv6 and other protocols: fields, payload lengths, cuts, nonsense."""

from __future__ import annotations

import pytest
from decode_frames import (
    ETH_IPV4,
    ETH_IPV6,
    ICMP_ECHO,
    NO_L4,
    TCP_SYN,
    UDP_DNS,
    assert_fields,
    ipv4,
    ipv6,
    row,
)

from tracker.packets import Status

TCP_OPTS_NS = bytes.fromhex(
    "01bb"  # source port 443
    "e2f0"  # destination port 58096
    "89abcdef"  # sequence number 0x89abcdef (above 2**31: unsigned)
    "fedcba98"  # acknowledgment number
    "81"  # data offset 8 (32 bytes), reserved 000, NS 1
    "d9"  # flags: CWR 0x80 | ECE 0x40 | ACK 0x10 | PSH 0x08 | FIN 0x01
    "ffff"  # window 65535
    "0000"  # checksum
    "0000"  # urgent pointer
    "0101080a0000000100000002"  # NOP, NOP, timestamps (12 bytes of options)
)


def test_tcp_with_options_and_ns_flag() -> None:
    payload = b"x" * 10
    frame = ETH_IPV4 + ipv4(20 + 32 + 10, 6) + TCP_OPTS_NS + payload
    # 9 flag bits: NS (0x100, from byte 12) + 0xd9 (byte 13)
    assert_fields(row(frame), status=Status.OK, src_port=443, dst_port=58096,
                  seq=0x89ABCDEF, ack=0xFEDCBA98, tcp_hdr_len=32, tcp_flags=0x1D9,
                  window=65535, payload_len=10, l4_offset=34, udp_len=-1, icmp_type=-1)


def test_tcp_payload_from_lengths_when_snaplen_cuts() -> None:
    frame = ETH_IPV4 + ipv4(20 + 32 + 1448, 6) + TCP_OPTS_NS + b"x" * 10
    assert_fields(row(frame, wire_len=14 + 1500), status=Status.OK, payload_len=1448)


@pytest.mark.parametrize(("cut", "kept", "gone"), [
    (3, {"src_port": 443}, {"dst_port": -1, "seq": 0}),
    (8, {"dst_port": 58096, "seq": 0x89ABCDEF}, {"ack": 0, "tcp_hdr_len": -1}),
    (13, {"ack": 0xFEDCBA98, "tcp_hdr_len": 32}, {"tcp_flags": 0, "window": -1}),
    (15, {"tcp_flags": 0x1D9}, {"window": -1}),
])
def test_tcp_cut_inside_fixed_header(cut: int, kept: dict, gone: dict) -> None:
    frame = ETH_IPV4 + ipv4(20 + 32, 6) + TCP_OPTS_NS
    got = row(frame[:34 + cut])
    assert_fields(got, status=Status.TRUNCATED, ip_len=52, proto=6, **kept, **gone)


def test_tcp_options_cut_is_truncated_with_all_fields() -> None:
    frame = ETH_IPV4 + ipv4(20 + 32, 6) + TCP_OPTS_NS
    got = row(frame[:34 + 24])  # fixed header and 4 of the 12 option bytes
    assert_fields(got, status=Status.TRUNCATED, src_port=443, tcp_hdr_len=32, window=65535,
                  tcp_flags=0x1D9, payload_len=0)


@pytest.mark.parametrize(("offset_byte", "ip_total"), [
    (0x40, 40),  # data offset 4: 16 bytes (< 20)
    (0x00, 40),  # data offset 0
    (0xF0, 40),  # data offset 15: 60 bytes, beyond the 20-byte IP payload
])
def test_tcp_nonsense_data_offset_is_malformed(offset_byte: int, ip_total: int) -> None:
    tcp = TCP_SYN[:12] + bytes([offset_byte]) + TCP_SYN[13:]
    got = row(ETH_IPV4 + ipv4(ip_total, 6) + tcp + bytes(40))
    assert_fields(got, status=Status.MALFORMED, src_port=50000, tcp_hdr_len=(offset_byte >> 4) * 4,
                  payload_len=-1)


def test_tcp_ip_payload_too_short_for_header_is_malformed() -> None:
    got = row(ETH_IPV4 + ipv4(20 + 12, 6) + TCP_SYN)  # IP says 12 bytes of TCP
    assert_fields(got, status=Status.MALFORMED, src_port=50000, seq=100, ack=0,
                  tcp_hdr_len=-1, window=-1, payload_len=-1)


def test_ethernet_padding_is_not_read_as_tcp() -> None:
    # IP total length 20 + 8: only 8 bytes of "TCP", then Ethernet padding (ones).
    got = row(ETH_IPV4 + ipv4(28, 6) + TCP_SYN[:8] + b"\xff" * 18)
    assert_fields(got, status=Status.MALFORMED, seq=100, tcp_flags=0, window=-1)


def test_udp() -> None:
    got = row(ETH_IPV4 + ipv4(20 + 20, 17) + UDP_DNS)
    assert_fields(got, status=Status.OK, proto=17, src_port=54321, dst_port=53, udp_len=20,
                  payload_len=12, tcp_hdr_len=-1, window=-1, tcp_flags=0)


def test_udp_payload_from_ip_length() -> None:
    # UDP length 20 but the IP header says 100 bytes: payload_len follows IP.
    got = row(ETH_IPV4 + ipv4(20 + 100, 17) + UDP_DNS, wire_len=14 + 120)
    assert_fields(got, status=Status.OK, udp_len=20, payload_len=92)


def test_udp_over_ipv6() -> None:
    got = row(ETH_IPV6 + ipv6(20, 17) + UDP_DNS)
    assert_fields(got, status=Status.OK, ip_version=6, dst_port=53, payload_len=12,
                  l4_offset=54)


def test_udp_length_below_eight_is_malformed() -> None:
    udp = UDP_DNS[:4] + bytes.fromhex("0007") + UDP_DNS[6:]  # length 7
    got = row(ETH_IPV4 + ipv4(40, 17) + udp)
    assert_fields(got, status=Status.MALFORMED, src_port=54321, udp_len=7)


def test_udp_cut() -> None:
    got = row((ETH_IPV4 + ipv4(40, 17) + UDP_DNS)[:34 + 5])
    assert_fields(got, status=Status.TRUNCATED, src_port=54321, dst_port=53, udp_len=-1,
                  payload_len=12)


def test_icmp_echo() -> None:
    got = row(ETH_IPV4 + ipv4(20 + 12, 1) + ICMP_ECHO)
    assert_fields(got, status=Status.OK, proto=1, icmp_type=8, icmp_code=0, payload_len=4,
                  src_port=-1, dst_port=-1)


def test_icmp_cut_after_type() -> None:
    got = row((ETH_IPV4 + ipv4(20 + 12, 1) + ICMP_ECHO)[:34 + 1])
    assert_fields(got, status=Status.TRUNCATED, icmp_type=8, icmp_code=-1, payload_len=4)


def test_icmp_shorter_than_its_header_is_malformed() -> None:
    got = row(ETH_IPV4 + ipv4(20 + 4, 1) + ICMP_ECHO)
    assert_fields(got, status=Status.MALFORMED, icmp_type=8, icmp_code=0, payload_len=-1)


def test_icmpv6_echo_request() -> None:
    echo6 = bytes.fromhex(
        "80"  # type 128: echo request (RFC 4443 section 4.1)
        "00"  # code 0
        "0000"  # checksum
        "00010002"  # identifier, sequence
    ) + b"ping"
    got = row(ETH_IPV6 + ipv6(12, 58) + echo6)
    assert_fields(got, status=Status.OK, proto=58, icmp_type=128, icmp_code=0, payload_len=4)


def test_protocol_1_in_ipv6_is_not_icmp() -> None:
    got = row(ETH_IPV6 + ipv6(12, 1) + ICMP_ECHO)
    assert_fields(got, status=Status.OK, proto=1, icmp_type=-1, payload_len=12)


def test_sctp_has_protocol_and_payload_only() -> None:
    sctp = bytes.fromhex(
        "0b59"  # source port 2905
        "0b59"  # destination port 2905
        "00000000"  # verification tag
        "00000000"  # checksum
    ) + bytes(16)  # one chunk
    got = row(ETH_IPV4 + ipv4(20 + 28, 132) + sctp)
    assert_fields(got, status=Status.OK, proto=132, payload_len=28, l4_offset=34, **NO_L4)


def test_gre_is_outer_header_only() -> None:
    gre = bytes.fromhex("0000" "0800") + ipv4(40, 6) + TCP_SYN  # GRE carrying IPv4/TCP
    got = row(ETH_IPV4 + ipv4(20 + 44, 47) + gre)
    assert_fields(got, status=Status.OK, proto=47, payload_len=44, **NO_L4)
