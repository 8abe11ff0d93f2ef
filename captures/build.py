"""Build the project's scenario captures: one TCP/IP behaviour per tiny file.

    .venv/bin/python captures/build.py            # rewrites the captures in captures/
    .venv/bin/python captures/build.py OUT_DIR    # writes them to OUT_DIR instead

The output is byte-identical on every run: timestamps, addresses, ports, TCP
sequence numbers and IP ids are all fixed (kit.py and below), and gzip gets
mtime 0. Scapy builds the packets and computes the checksums; writers.py writes
the containers byte by byte. captures/README.md lists every file with the
result that the flow layer must give, worked out by hand from the packets below.
"""

from __future__ import annotations

import argparse
import gzip
import struct
import sys
from collections.abc import Callable
from pathlib import Path

from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.packet import Raw

sys.path.insert(0, str(Path(__file__).resolve().parent))  # kit.py, writers.py beside us
from kit import (
    CLI,
    CLI4,
    CLI6,
    DNS4,
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    SRV,
    SRV4,
    SRV6,
    Link,
    Pair,
    Step,
    Talk,
    eth,
    eth_qinq,
    eth_vlan10,
    filler,
    ms,
    null,
    raw,
    records,
    sll,
    sll2,
)
from writers import Interface, pcap_bytes, pcapng_bytes


def pcap_of(steps: list[Step], link: Link, linktype: int, *, snaplen: int = 65535,
            nanosecond: bool = False) -> bytes:
    """A pcap file of the steps in time order, each wrapped by ``link``."""
    return pcap_bytes(records(steps, link), linktype, snaplen=snaplen, nanosecond=nanosecond)


def eth_pcap(talk: Talk) -> bytes:
    return pcap_of(talk.steps, eth, LINKTYPE_ETHERNET)


# --- TCP scenarios (client 192.0.2.10, server 198.51.100.20) -------------------------


def _handshake_fin() -> Talk:
    t = Talk(Pair(CLI4, SRV4, 49152, 80), 0x0A000000, 0x0B000000)
    t.handshake(0)
    t.tcp(ms(10.2), CLI, "PA", 80)
    t.tcp(ms(20.2), SRV, "A")
    t.tcp(ms(25), SRV, "PA", 200)
    t.tcp(ms(25.1), CLI, "A")
    t.tcp(ms(30), CLI, "FA")
    t.tcp(ms(40), SRV, "A")
    t.tcp(ms(40.1), SRV, "FA")
    t.tcp(ms(40.2), CLI, "A")
    return t


def tcp_handshake_fin() -> bytes:
    return eth_pcap(_handshake_fin())


def tcp_syn_only() -> bytes:
    t = Talk(Pair(CLI4, SRV4, 49153, 80), 0x0A100000)
    t.tcp(0, CLI, "S")
    t.resend(ms(1000), 0)
    t.resend(ms(3000), 0)
    return eth_pcap(t)


def tcp_rejected() -> bytes:
    # A RST answering a SYN has seq 0 and acks the SYN (RFC 9293 section 3.5.2).
    t = Talk(Pair(CLI4, SRV4, 49154, 80), 0x0A200000, 0)
    t.tcp(0, CLI, "S")
    t.tcp(ms(10), SRV, "RA")
    return eth_pcap(t)


def tcp_reset_mid() -> bytes:
    t = Talk(Pair(CLI4, SRV4, 49155, 80), 0x0A300000, 0x0B300000)
    t.handshake(0)
    t.tcp(ms(10.2), CLI, "PA", 100)
    t.tcp(ms(20.2), SRV, "A")
    t.tcp(ms(25), SRV, "PA", 300)
    t.tcp(ms(25.1), CLI, "RA")
    return eth_pcap(t)


def tcp_midstream() -> bytes:
    t = Talk(Pair(CLI4, SRV4, 49156, 80), 0x50000000, 0x60000000)
    t.tcp(0, CLI, "PA", 100)
    t.tcp(ms(10), SRV, "A")
    t.tcp(ms(15), SRV, "PA", 200)
    t.tcp(ms(15.1), CLI, "A")
    t.tcp(ms(20), CLI, "PA", 50)
    t.tcp(ms(30), SRV, "A")
    return eth_pcap(t)


def tcp_port_reuse() -> bytes:
    pair = Pair(CLI4, SRV4, 49164, 80)
    first = Talk(pair, 0x0D000000, 0x0E000000)
    first.handshake(0)
    first.tcp(ms(10.2), CLI, "PA", 50)
    first.tcp(ms(20.2), SRV, "PA", 60)
    first.tcp(ms(30), CLI, "FA")
    first.tcp(ms(40), SRV, "FA")
    first.tcp(ms(40.1), CLI, "A")
    # 2 s later, same socket pair, new (higher) ISNs: a new connection.
    second = Talk(pair, 0x0D100000, 0x0E500000)
    second.handshake(ms(2000))
    second.tcp(ms(2010.2), CLI, "PA", 50)
    return pcap_of(first.steps + second.steps, eth, LINKTYPE_ETHERNET)


def tcp_synack_first() -> bytes:
    # The client's SYN (ISN 0x0A600000) was not captured: the SYN-ACK acks ISN + 1.
    t = Talk(Pair(CLI4, SRV4, 49165, 80), 0x0A600001, 0x0B600000)
    t.tcp(0, SRV, "SA")
    t.tcp(ms(0.1), CLI, "A")
    t.tcp(ms(0.2), CLI, "PA", 80)
    t.tcp(ms(10.2), SRV, "A")
    t.tcp(ms(15), SRV, "PA", 200)
    t.tcp(ms(20), CLI, "FA")
    t.tcp(ms(30), SRV, "FA")
    t.tcp(ms(30.1), CLI, "A")
    return eth_pcap(t)


def tcp_half_close() -> bytes:
    t = Talk(Pair(CLI4, SRV4, 49166, 80), 0x0A700000, 0x0B700000)
    t.handshake(0)
    t.tcp(ms(10.2), CLI, "PA", 80)
    t.tcp(ms(20.2), SRV, "A")
    t.tcp(ms(20.3), CLI, "FA")
    t.tcp(ms(30.3), SRV, "A")
    t.tcp(ms(35), SRV, "PA", 500)
    t.tcp(ms(35.1), CLI, "A")
    return eth_pcap(t)


def tcp_server_close() -> bytes:
    t = Talk(Pair(CLI4, SRV4, 49167, 80), 0x0A800000, 0x0B800000)
    t.handshake(0)
    t.tcp(ms(10.2), CLI, "PA", 80)
    t.tcp(ms(20.2), SRV, "A")
    t.tcp(ms(25), SRV, "PA", 200)
    t.tcp(ms(25.1), SRV, "FA")
    t.tcp(ms(25.2), CLI, "A")
    t.tcp(ms(25.3), CLI, "FA")
    t.tcp(ms(35.3), SRV, "A")
    return eth_pcap(t)


def snaplen_96() -> bytes:
    # Server ISN near 2**32 so that its sequence numbers wrap inside the transfer.
    t = Talk(Pair(CLI4, SRV4, 49163, 80), 0x0C000000, 0xFFFFF000)
    t.handshake(0)
    t.tcp(ms(10.2), CLI, "PA", 100)
    t.tcp(ms(20.2), SRV, "A", 1400)
    t.tcp(ms(20.3), SRV, "PA", 1400)
    t.tcp(ms(20.4), CLI, "A")
    t.tcp(ms(30.4), SRV, "PA", 1400)
    t.tcp(ms(30.5), CLI, "A")
    t.tcp(ms(40), CLI, "FA")
    t.tcp(ms(50), SRV, "FA")
    t.tcp(ms(50.1), CLI, "A")
    return pcap_of(t.steps, eth, LINKTYPE_ETHERNET, snaplen=96)


def ipv6_tcp() -> bytes:
    t = Talk(Pair(CLI6, SRV6, 49157, 443), 0x0A400000, 0x0B400000)
    t.handshake(0)
    t.tcp(ms(10.2), CLI, "PA", 100)
    t.tcp(ms(20.2), SRV, "PA", 300)
    t.tcp(ms(20.3), CLI, "A")
    t.tcp(ms(30), CLI, "FA")
    t.tcp(ms(40), SRV, "FA")
    t.tcp(ms(40.1), CLI, "A")
    return eth_pcap(t)


# --- UDP and ICMP --------------------------------------------------------------------

# A DNS query for example.com A and its answer (RFC 1035 section 4.1; names from
# RFC 2606, the address from RFC 5737). 29 and 45 bytes.
DNS_QUESTION = b"\x07example\x03com\x00" + struct.pack("!HH", 1, 1)  # QTYPE A, QCLASS IN
DNS_QUERY = struct.pack("!6H", 0x1A2B, 0x0100, 1, 0, 0, 0) + DNS_QUESTION
DNS_ANSWER = (struct.pack("!6H", 0x1A2B, 0x8180, 1, 1, 0, 0) + DNS_QUESTION
              + struct.pack("!HHHIH", 0xC00C, 1, 1, 3600, 4) + bytes([203, 0, 113, 80]))


def udp_request_response() -> bytes:
    t = Talk(Pair(CLI4, DNS4, 53001, 53))
    t.udp(0, CLI, DNS_QUERY)
    t.udp(ms(12), SRV, DNS_ANSWER)
    return eth_pcap(t)


def icmp_echo() -> bytes:
    t = Talk(Pair(CLI4, SRV4, 0, 0))
    for n in (1, 2):
        t.echo(ms(1000 * (n - 1)), CLI, n)
        t.echo(ms(1000 * (n - 1) + 5), SRV, n)
    return eth_pcap(t)


def nanosecond() -> bytes:
    t = Talk(Pair(CLI4, SRV4, 40008, 9008))
    t.udp(1, CLI, filler(48, "nano"))
    t.udp(123_456_789, SRV, filler(48, "nano"))
    return pcap_of(t.steps, eth, LINKTYPE_ETHERNET, nanosecond=True)


# --- link layers -----------------------------------------------------------------------


def vlan() -> bytes:
    t = Talk(Pair(CLI4, SRV4, 49158, 80), 0x0AB00000, 0x0BB00000)
    t.handshake(0)
    return pcap_of(t.steps, eth_vlan10, LINKTYPE_ETHERNET)


def qinq() -> bytes:
    t = Talk(Pair(CLI4, SRV4, 40000, 9000))
    t.udp(0, CLI, filler(16, "qinq"))
    t.udp(ms(8), SRV, filler(32, "qinq"))
    return pcap_of(t.steps, eth_qinq, LINKTYPE_ETHERNET)


def sll_udp() -> bytes:
    t = Talk(Pair(CLI4, SRV4, 40001, 9001))
    t.udp(0, CLI, filler(20, "sll"))
    t.udp(ms(8), SRV, filler(40, "sll"))
    return pcap_of(t.steps, sll, LINKTYPE_LINUX_SLL)


def sll2_tcp() -> bytes:
    t = Talk(Pair(CLI4, SRV4, 49159, 8080), 0x0AC00000, 0x0BC00000)
    t.handshake(0)
    return pcap_of(t.steps, sll2, LINKTYPE_LINUX_SLL2)


def rawip() -> bytes:
    v4 = Talk(Pair(CLI4, SRV4, 40002, 9002))
    v4.udp(0, CLI, filler(12, "raw4"))
    v4.udp(ms(8), SRV, filler(12, "raw4"))
    v6 = Talk(Pair(CLI6, SRV6, 40003, 9003))
    v6.udp(ms(20), CLI, filler(12, "raw6"))
    v6.udp(ms(28), SRV, filler(12, "raw6"))
    return pcap_of(v4.steps + v6.steps, raw, LINKTYPE_RAW)


def null_loopback() -> bytes:
    v4 = Talk(Pair("127.0.0.1", "127.0.0.1", 49160, 8080), 0x0AD00000, 0x0BD00000)
    v4.handshake(0, rtt_ns=ms(0.05))
    v6 = Talk(Pair("::1", "::1", 40004, 9004))
    v6.udp(ms(1), CLI, filler(20, "loop"))
    return pcap_of(v4.steps + v6.steps, null, LINKTYPE_NULL)


# --- fragments -----------------------------------------------------------------------


def ipv4_fragments() -> bytes:
    """A TCP SYN, then a 3000-byte UDP datagram (IP id 12345) in 3 fragments."""
    syn = Talk(Pair(CLI4, SRV4, 49161, 80), 0x0AE00000)
    syn.tcp(0, CLI, "S")
    dgram = (IP(src=CLI4, dst=SRV4, ttl=64, id=12345) / UDP(sport=40005, dport=9005)
             / Raw(filler(2972, "fragmented")))
    frags = fragment(dgram, fragsize=1480)  # 1480 + 1480 + 20 bytes of IP payload
    steps = syn.steps + [Step(ms(100 + 0.01 * i), CLI, f) for i, f in enumerate(frags)]
    return pcap_of(steps, eth, LINKTYPE_ETHERNET)


def ipv6_fragments() -> bytes:
    """A UDP datagram with 2400 data bytes, in two IPv6 fragments of at most 1280 bytes."""
    dgram = (IPv6(src=CLI6, dst=SRV6, hlim=64) / IPv6ExtHdrFragment(id=0x12345678)
             / UDP(sport=40006, dport=9006) / Raw(filler(2400, "fragmented6")))
    frags = fragment6(dgram, 1280)
    return pcap_of([Step(ms(0.01 * i), CLI, f) for i, f in enumerate(frags)], eth,
                   LINKTYPE_ETHERNET)


# --- containers ----------------------------------------------------------------------


def pcapng_two_interfaces() -> bytes:
    """eth0 (Ethernet, microseconds) and tun0 (raw IP, nanoseconds), interleaved."""
    tcp = Talk(Pair(CLI4, SRV4, 49162, 80), 0x0AF00000, 0x0BF00000)
    tcp.handshake(0)
    udp = Talk(Pair(CLI4, SRV4, 40007, 9007))
    udp.udp(500_123, CLI, filler(12, "tun"))
    udp.udp(10_050_456, SRV, filler(12, "tun"))
    tagged = [(0, r) for r in records(tcp.steps, eth)] + [(1, r) for r in records(udp.steps, raw)]
    tagged.sort(key=lambda item: item[1].ts_ns)
    ifaces = [Interface(LINKTYPE_ETHERNET, "eth0", 6), Interface(LINKTYPE_RAW, "tun0", 9)]
    return pcapng_bytes(ifaces, tagged)


def gzip_pcap() -> bytes:
    """tcp-handshake-fin.pcap, gzipped with mtime 0 and no file name in the header."""
    return gzip.compress(tcp_handshake_fin(), compresslevel=9, mtime=0)


def truncated_last_record() -> bytes:
    """tcp-handshake-fin.pcap cut in the middle of its last record's frame bytes."""
    recs = records(_handshake_fin().steps, eth)
    return pcap_bytes(recs, LINKTYPE_ETHERNET)[: -(len(recs[-1].data) // 2)]


SCENARIOS: dict[str, Callable[[], bytes]] = {
    "tcp-handshake-fin.pcap": tcp_handshake_fin,
    "tcp-syn-only.pcap": tcp_syn_only,
    "tcp-rejected.pcap": tcp_rejected,
    "tcp-reset-mid.pcap": tcp_reset_mid,
    "tcp-midstream.pcap": tcp_midstream,
    "tcp-port-reuse.pcap": tcp_port_reuse,
    "tcp-synack-first.pcap": tcp_synack_first,
    "tcp-half-close.pcap": tcp_half_close,
    "tcp-server-close.pcap": tcp_server_close,
    "udp-request-response.pcap": udp_request_response,
    "icmp-echo.pcap": icmp_echo,
    "ipv6-tcp.pcap": ipv6_tcp,
    "vlan.pcap": vlan,
    "qinq.pcap": qinq,
    "sll.pcap": sll_udp,
    "sll2.pcap": sll2_tcp,
    "rawip.pcap": rawip,
    "null-loopback.pcap": null_loopback,
    "ipv4-fragments.pcap": ipv4_fragments,
    "ipv6-fragments.pcap": ipv6_fragments,
    "pcapng-two-interfaces.pcapng": pcapng_two_interfaces,
    "nanosecond.pcap": nanosecond,
    "gzip.pcap.gz": gzip_pcap,
    "truncated-last-record.pcap": truncated_last_record,
    "snaplen-96.pcap": snaplen_96,
}


def main(argv: list[str] | None = None) -> int:
    """Write every scenario capture into the output directory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path(__file__).resolve().parent,
                        help="where to write the captures (default: captures/)")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, build in SCENARIOS.items():
        (args.out_dir / name).write_bytes(build())
    print(f"wrote {len(SCENARIOS)} captures to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
