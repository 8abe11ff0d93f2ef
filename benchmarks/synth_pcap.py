"""Classic pcap records from per-packet columns, built for a whole batch at once.

Every record is laid out in one row of a byte matrix (record header, Ethernet,
IPv4 or IPv6, TCP or UDP), then the rows are cut to their captured length and
written back to back. Checksums are real (RFC 791 for IPv4 headers, RFC 9293
section 3.1 / RFC 768 with the RFC 8200 section 8.1 pseudo-header for TCP and
UDP), so the files pass checksum-verifying tools such as Zeek without ``-C``.
Transport payload is zeros, except DNS messages, whose header and question are
real (RFC 1035).
"""

from __future__ import annotations

import struct

import numpy as np
from numpy.typing import NDArray
from synth_flows import SYN

U8M = NDArray[np.uint8]

# Classic pcap file header (libpcap's pcap-savefile(5)): magic, version 2.4,
# thiszone, sigfigs, snaplen, LINKTYPE_ETHERNET (1).
PCAP_MAGIC_USEC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
ETH_MIN_FRAME = 60  # IEEE 802.3 minimum frame without FCS: shorter frames are padded
ETH_HDR = 14
ETHERTYPE_IPV4, ETHERTYPE_IPV6 = 0x0800, 0x86DD
GATEWAY_MAC = 0x001122334455
REC = 16  # pcap record header bytes
IP_OFF = REC + ETH_HDR  # where the IP header starts in a row
HDR_SPAN = ETH_HDR + 40 + 40  # Ethernet + IPv6 + the longest TCP header the generator makes
ROW_BYTES_PER_BATCH = 16 << 20

PKT = np.dtype(
    [
        ("t", "<i8"),
        ("fid", "<i8"),
        ("dir", "u1"),
        ("flags", "u1"),
        ("plen", "<i4"),
        ("l4hl", "u1"),
        ("seq", "<u4"),
        ("ack", "<u4"),
        ("proto", "u1"),
        ("v6", "?"),
        ("c_hi", "<u8"),
        ("c_lo", "<u8"),
        ("s_hi", "<u8"),
        ("s_lo", "<u8"),
        ("cport", "<u2"),
        ("sport", "<u2"),
        ("cmac", "<u8"),
        ("ttl", "u1"),
        ("win", "<u2"),
        ("ipid", "<u2"),
        ("tsval", "<u4"),
        ("tsecr", "<u4"),
    ]
)

# DNS: a query and a response with 16 A answers for www.example.com (RFC 1035 4.1);
# the id (bytes 0-1) and the answer count (6-7) are filled per packet.
_QNAME = bytes.fromhex("03777777076578616d706c6503636f6d0000010001")
DNS_QUERY = bytes.fromhex("000001000001000000000000") + _QNAME
_ANSWER = bytes.fromhex("c00c000100010000012c00045db8d822")
DNS_RESPONSE = bytes.fromhex("000081800001000000000000") + _QNAME + _ANSWER * 16


def _prefix_sums(msg: bytes) -> NDArray[np.uint64]:
    """Ones-complement word sums of the first L bytes of ``msg``, for every L."""
    b = np.frombuffer(msg + b"\0", np.uint8).astype(np.uint64)
    w = np.where(np.arange(len(b)) % 2 == 0, b << np.uint64(8), b)
    return np.r_[np.uint64(0), np.cumsum(w)][: len(msg) + 1].astype(np.uint64)


DNS_SUMS = (_prefix_sums(DNS_QUERY), _prefix_sums(DNS_RESPONSE))


def file_header(snaplen: int) -> bytes:
    """The 24-byte pcap global header (little-endian, microseconds)."""
    return struct.pack("<IHHiIII", PCAP_MAGIC_USEC, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET)


def lengths(p: NDArray[np.void]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """IP total length and frame length on the wire (padded to the Ethernet minimum)."""
    ip_len = np.where(p["v6"], 40, 20) + p["l4hl"].astype(np.int64) + p["plen"]
    return ip_len, np.maximum(ip_len + ETH_HDR, ETH_MIN_FRAME)


def put(a: U8M, rows: NDArray[np.int64] | slice, col: int, values: object, fmt: str) -> None:
    """Write big-endian ``values`` (numpy type ``fmt``) at column ``col`` of ``rows``."""
    v = np.ascontiguousarray(np.asarray(values).astype(fmt))
    a[rows, col : col + v.itemsize] = v.view(np.uint8).reshape(-1, v.itemsize)


def records(p: NDArray[np.void], snaplen: int) -> bytes:
    """The pcap records of packets ``p`` (already in time order)."""
    _, wire = lengths(p)
    width = REC + max(HDR_SPAN, min(snaplen, int(wire.max(initial=0))))
    step = max(1, ROW_BYTES_PER_BATCH // width)
    return b"".join(_records(p[s : s + step], snaplen, width) for s in range(0, len(p), step))


def _records(p: NDArray[np.void], snaplen: int, width: int) -> bytes:
    n = len(p)
    ip_len, wire = lengths(p)
    caplen = np.minimum(wire, snaplen)
    a = np.zeros((n, width), np.uint8)
    hdr = np.empty((n, 4), "<u4")
    hdr[:, 0], hdr[:, 1] = p["t"] // 1_000_000, p["t"] % 1_000_000
    hdr[:, 2], hdr[:, 3] = caplen, wire
    a[:, :REC] = hdr.view(np.uint8).reshape(n, REC)
    srv = p["dir"] == 1
    put(a, slice(None), REC, np.where(srv, p["cmac"], GATEWAY_MAC) << np.uint64(16), ">u8")
    put(a, slice(None), REC + 6, np.where(srv, GATEWAY_MAC, p["cmac"]) << np.uint64(16), ">u8")
    put(a, slice(None), REC + 12, np.where(p["v6"], ETHERTYPE_IPV6, ETHERTYPE_IPV4), ">u2")
    for v6 in (False, True):
        rows = np.flatnonzero(p["v6"] == v6)
        if len(rows):
            (_ipv6 if v6 else _ipv4)(a, rows, p[rows], ip_len[rows])
            _transport(a, rows, p[rows], IP_OFF + (40 if v6 else 20), v6)
    keep = np.arange(width)[None, :] < (REC + caplen)[:, None]
    return a[keep].tobytes()


def _addrs(p: NDArray[np.void]) -> tuple[NDArray[np.uint64], ...]:
    """(src_hi, src_lo, dst_hi, dst_lo) of each packet."""
    srv = p["dir"] == 1
    return (
        np.where(srv, p["s_hi"], p["c_hi"]),
        np.where(srv, p["s_lo"], p["c_lo"]),
        np.where(srv, p["c_hi"], p["s_hi"]),
        np.where(srv, p["c_lo"], p["s_lo"]),
    )


def _fold(s: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Fold a 64-bit word sum into 16 bits (ones-complement addition, RFC 1071)."""
    for _ in range(4):
        s = (s & np.uint64(0xFFFF)) + (s >> np.uint64(16))
    return s


def _word_sum(a: U8M, rows: NDArray[np.int64], lo: int, hi: int) -> NDArray[np.uint64]:
    """Sum of the big-endian 16-bit words in columns [lo, hi) of ``rows``."""
    return np.ascontiguousarray(a[rows, lo:hi]).view(">u2").sum(axis=1, dtype=np.uint64)


def _ipv4(a: U8M, rows: NDArray[np.int64], p: NDArray[np.void], ip_len: NDArray[np.int64]) -> None:
    """IPv4 header (RFC 791), DF set, no options, with its checksum."""
    o = IP_OFF
    a[rows, o] = 0x45
    put(a, rows, o + 2, ip_len, ">u2")
    put(a, rows, o + 4, p["ipid"], ">u2")
    put(a, rows, o + 6, np.full(len(rows), 0x4000), ">u2")
    a[rows, o + 8] = p["ttl"]
    a[rows, o + 9] = p["proto"]
    _, src, _, dst = _addrs(p)
    put(a, rows, o + 12, src, ">u4")
    put(a, rows, o + 16, dst, ">u4")
    put(a, rows, o + 10, ~_fold(_word_sum(a, rows, o, o + 20)) & np.uint64(0xFFFF), ">u2")


def _ipv6(a: U8M, rows: NDArray[np.int64], p: NDArray[np.void], ip_len: NDArray[np.int64]) -> None:
    """IPv6 header (RFC 8200 section 3), flow label from the flow number."""
    o = IP_OFF
    put(
        a, rows, o, np.uint64(0x60000000) | (p["fid"].astype(np.uint64) & np.uint64(0xFFFFF)), ">u4"
    )
    put(a, rows, o + 4, ip_len - 40, ">u2")
    a[rows, o + 6] = p["proto"]
    a[rows, o + 7] = p["ttl"]
    for i, v in enumerate(_addrs(p)):
        put(a, rows, o + 8 + 8 * i, v, ">u8")


def _transport(a: U8M, rows: NDArray[np.int64], p: NDArray[np.void], o: int, v6: bool) -> None:
    """TCP or UDP header and payload at column ``o``, then its checksum."""
    srv = p["dir"] == 1
    put(a, rows, o, np.where(srv, p["sport"], p["cport"]), ">u2")
    put(a, rows, o + 2, np.where(srv, p["cport"], p["sport"]), ">u2")
    l4_len = p["l4hl"].astype(np.int64) + p["plen"]
    tcp = p["proto"] == 6
    payload_sum = np.zeros(len(rows), np.uint64)
    if tcp.any():
        _tcp(a, rows[tcp], p[tcp], o)
    if (~tcp).any():
        payload_sum[~tcp] = _udp(a, rows[~tcp], p[~tcp], o)
    s = np.zeros(len(rows), np.uint64)
    s[tcp] = _word_sum(a, rows[tcp], o, o + 40)  # TCP payload bytes are zeros
    s[~tcp] = _word_sum(a, rows[~tcp], o, o + 8) + payload_sum[~tcp]
    pseudo = (IP_OFF + 8, IP_OFF + 40) if v6 else (IP_OFF + 12, IP_OFF + 20)
    s += _word_sum(a, rows, *pseudo) + p["proto"].astype(np.uint64) + l4_len.astype(np.uint64)
    csum = ~_fold(s) & np.uint64(0xFFFF)
    csum = np.where((csum == 0) & ~tcp, np.uint64(0xFFFF), csum)  # RFC 768: 0 is sent as all ones
    for sel, at in ((tcp, o + 16), (~tcp, o + 6)):
        if sel.any():
            put(a, rows[sel], at, csum[sel], ">u2")


def _tcp(a: U8M, rows: NDArray[np.int64], p: NDArray[np.void], o: int) -> None:
    """TCP header (RFC 9293 section 3.1) with the options each header length implies."""
    put(a, rows, o + 4, p["seq"], ">u4")
    put(a, rows, o + 8, p["ack"], ">u4")
    a[rows, o + 12] = (p["l4hl"] // 4) << 4
    a[rows, o + 13] = p["flags"]
    put(a, rows, o + 14, p["win"], ">u2")
    hl, syn = p["l4hl"], (p["flags"] & SYN) != 0
    opts = {  # RFC 9293 MSS (kind 2), RFC 2018 SACK-permitted (4), RFC 7323 TS (8) and WS (3)
        "syn40": (syn & (hl == 40), bytes.fromhex("020405b40402080a"), 8),
        "syn32": (syn & (hl == 32), bytes.fromhex("020405b40103030801010402"), None),
        "syn24": (syn & (hl == 24), bytes.fromhex("020405b4"), None),
        "ts32": (~syn & (hl == 32), bytes.fromhex("0101080a"), 4),
    }
    for sel, prefix, ts_at in opts.values():
        r = rows[sel]
        if not len(r):
            continue
        a[r, o + 20 : o + 20 + len(prefix)] = np.frombuffer(prefix, np.uint8)
        if ts_at is not None:
            put(a, r, o + 20 + ts_at, p["tsval"][sel], ">u4")
            put(a, r, o + 24 + ts_at, p["tsecr"][sel], ">u4")
    s40 = rows[syn & (hl == 40)]
    a[s40, o + 36 : o + 40] = np.frombuffer(bytes.fromhex("01030307"), np.uint8)  # NOP, WS 7


def _udp(a: U8M, rows: NDArray[np.int64], p: NDArray[np.void], o: int) -> NDArray[np.uint64]:
    """UDP header (RFC 768) and DNS payloads; returns the payload word sums."""
    put(a, rows, o + 4, p["l4hl"].astype(np.int64) + p["plen"], ">u2")
    sums = np.zeros(len(rows), np.uint64)
    dns = p["sport"] == 53
    for resp in (0, 1):
        sel = dns & (p["dir"] == resp)
        r = rows[sel]
        if not len(r):
            continue
        msg, plen = (DNS_RESPONSE if resp else DNS_QUERY), p["plen"][sel].astype(np.int64)
        qid = p["fid"][sel].astype(np.uint64) & np.uint64(0xFFFF)
        ancount = (
            ((plen - len(DNS_QUERY)) // 16).astype(np.uint64)
            if resp
            else np.zeros(len(r), np.uint64)
        )
        room = a.shape[1] - (o + 8)
        body = np.broadcast_to(np.frombuffer(msg[:room], np.uint8), (len(r), min(room, len(msg))))
        visible = np.arange(body.shape[1])[None, :] < plen[:, None]
        a[r, o + 8 : o + 8 + body.shape[1]] = np.where(visible, body, 0)
        put(a, r, o + 8, qid, ">u2")
        put(a, r, o + 14, ancount, ">u2")
        sums[sel] = DNS_SUMS[resp][plen] + qid + ancount
    return sums
