"""Hand-written header bytes for the decoder tests, and a helper to decode them.

Every header is a byte literal with one comment per field, so each expected
value in the tests can be checked against the bytes by eye. Addresses use the
documentation ranges (RFC 5737, RFC 3849) and MACs the IANA documentation
block 00:00:5e:00:53:xx (RFC 7042).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from tracker.decode import decode
from tracker.frames import LINKTYPE_ETHERNET, FrameBatch
from tracker.packets import PacketBatch, Status

# --- link layer -----------------------------------------------------------

MACS = bytes.fromhex(
    "00005e005301"  # destination MAC
    "00005e005302"  # source MAC
)
ETH_IPV4 = MACS + bytes.fromhex("0800")  # ethertype IPv4
ETH_IPV6 = MACS + bytes.fromhex("86dd")  # ethertype IPv6

# --- IPv4 (RFC 791) ---------------------------------------------------------

# 192.0.2.1 -> 198.51.100.2 mapped into IPv6 space: ::ffff:c000:0201, ::ffff:c633:6402
V4_SRC_LO = 0x0000FFFF_C0000201
V4_DST_LO = 0x0000FFFF_C6336402


def ipv4(total_len: int, proto: int, *, ver_ihl: int = 0x45, ident: int = 0x1C46,
         flags_frag: int = 0x4000, options: bytes = b"") -> bytes:
    """An IPv4 header; the arguments are the raw field values."""
    return bytes([ver_ihl, 0x00]) + (  # version|IHL, DSCP|ECN
        total_len.to_bytes(2, "big")  # total length
        + ident.to_bytes(2, "big")  # identification
        + flags_frag.to_bytes(2, "big")  # flags (DF 0x4000, MF 0x2000) | offset/8
        + bytes([64, proto])  # TTL 64, protocol
        + bytes.fromhex("0000")  # header checksum (not checked)
        + bytes.fromhex("c0000201")  # source 192.0.2.1
        + bytes.fromhex("c6336402")  # destination 198.51.100.2
        + options
    )


# --- IPv6 (RFC 8200) --------------------------------------------------------

V6_SRC = bytes.fromhex("20010db8000000000000000000000001")  # 2001:db8::1
V6_DST = bytes.fromhex("20010db8000000000000000000000002")  # 2001:db8::2
V6_SRC_HI, V6_SRC_LO = 0x20010DB8_00000000, 1
V6_DST_HI, V6_DST_LO = 0x20010DB8_00000000, 2


def ipv6(payload_len: int, next_header: int) -> bytes:
    """An IPv6 fixed header."""
    return (
        bytes.fromhex("60000000")  # version 6, traffic class 0, flow label 0
        + payload_len.to_bytes(2, "big")  # payload length
        + bytes([next_header, 64])  # next header, hop limit 64
        + V6_SRC
        + V6_DST
    )


# --- transport ----------------------------------------------------------------

TCP_SYN = bytes.fromhex(
    "c350"  # source port 50000
    "0050"  # destination port 80
    "00000064"  # sequence number 100
    "00000000"  # acknowledgment number 0
    "50"  # data offset 5 (20 bytes), reserved 0, NS 0
    "02"  # flags: SYN
    "faf0"  # window 64240
    "0000"  # checksum
    "0000"  # urgent pointer
)

UDP_DNS = bytes.fromhex(
    "d431"  # source port 54321
    "0035"  # destination port 53
    "0014"  # length 20 = 8 header + 12 payload
    "0000"  # checksum (none)
) + bytes(12)  # 12 bytes of payload

ICMP_ECHO = bytes.fromhex(
    "08"  # type 8: echo request
    "00"  # code 0
    "0000"  # checksum
    "1234"  # identifier
    "0001"  # sequence number
) + b"abcd"  # 4 bytes of data


def eth_ipv4_tcp() -> bytes:
    """Ethernet / IPv4 (total 40) / TCP SYN: the most ordinary frame."""
    return ETH_IPV4 + ipv4(40, 6) + TCP_SYN


IP_TCP = ipv4(40, 6) + TCP_SYN  # IPv4 total length 40, protocol TCP, then a SYN
IP6_TCP = ipv6(20, 6) + TCP_SYN  # IPv6 payload length 20, next header TCP


# --- decoding -----------------------------------------------------------------


def rows(frames: list[bytes], linktype: int = LINKTYPE_ETHERNET,
         wire_len: list[int] | None = None) -> list[dict[str, Any]]:
    """Decode ``frames`` as one batch; one dict of column -> Python value per frame."""
    pb = decode(FrameBatch.from_frames(frames, linktype=linktype, wire_len=wire_len))
    assert len(pb) == len(frames)
    return [{f.name: getattr(pb, f.name)[i].item() for f in fields(PacketBatch)}
            for i in range(len(pb))]


def row(frame: bytes, linktype: int = LINKTYPE_ETHERNET, wire_len: int | None = None
        ) -> dict[str, Any]:
    """Decode one frame (in a batch with an ordinary frame, to test mixing too)."""
    wl = None if wire_len is None else [wire_len, len(eth_ipv4_tcp())]
    if linktype == LINKTYPE_ETHERNET:
        return rows([frame, eth_ipv4_tcp()], linktype, wl)[0]
    return rows([frame], linktype, None if wire_len is None else [wire_len])[0]


# Columns a frame that reached no IP header must leave at their NONE value.
NO_IP = {"l3_offset": -1, "ip_version": 0, "proto": -1, "ip_hdr_len": -1, "ip_len": -1,
         "src_lo": 0, "dst_lo": 0, "l4_offset": -1, "src_port": -1, "dst_port": -1,
         "payload_len": -1}
# Columns a frame with no transport header must leave at their NONE value.
NO_L4 = {"src_port": -1, "dst_port": -1, "tcp_flags": 0, "seq": 0, "ack": 0, "window": -1,
         "tcp_hdr_len": -1, "udp_len": -1, "icmp_type": -1, "icmp_code": -1}


def assert_fields(got: dict[str, Any], **expected: Any) -> None:
    """Every ``expected`` column has that value (Status members compare as ints)."""
    wrong = {k: (got[k], v) for k, v in expected.items() if got[k] != v}
    assert not wrong, f"(got, expected): {wrong}"


def assert_ipv4_syn(got: dict[str, Any], l3_offset: int) -> None:
    """The IPv4/TCP SYN of IP_TCP was found at ``l3_offset`` (an offset in the batch)."""
    assert_fields(got, status=Status.OK, l3_offset=l3_offset, ip_version=4, proto=6,
                  ip_len=40, ip_hdr_len=20, src_lo=V4_SRC_LO, dst_lo=V4_DST_LO,
                  l4_offset=l3_offset + 20, src_port=50000, dst_port=80, tcp_flags=0x02,
                  seq=100, payload_len=0)
