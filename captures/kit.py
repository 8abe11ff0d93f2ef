"""Packet kit for build.py: conversations with tracked TCP sequence numbers, and link layers.

A ``Talk`` is one conversation between a client and a server socket; its
methods append IP packets (built with Scapy, so checksums are right) with a
time and a direction. A link function wraps an IP packet in its link-layer
header for one direction, and ``records`` turns the steps into timed frames
for the writers in writers.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, Loopback
from scapy.packet import Packet, Raw
from writers import Record

# Link types, from https://www.tcpdump.org/linktypes.html
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

# 2023-11-14T22:13:20Z: the fixed start of every capture.
T0_NS = 1_700_000_000 * 10**9

# Addresses reserved for documentation: RFC 5737 (IPv4), RFC 3849 (IPv6);
# MACs with the locally administered bit set (IEEE 802, RFC 7042 section 2.1).
CLI4, SRV4, DNS4 = "192.0.2.10", "198.51.100.20", "198.51.100.53"
CLI6, SRV6 = "2001:db8::10", "2001:db8::20"
MAC_CLI, MAC_SRV = "02:00:00:00:00:0a", "02:00:00:00:00:14"

CLI, SRV = True, False  # direction of a packet: sent by the client or the server
MSS = 1460  # the only TCP option, on SYN and SYN-ACK: makes their TCP header 24 bytes
WINDOW = 64240  # Linux's initial window for a 1460-byte MSS
ETHER_MIN = 60  # IEEE 802.3 minFrameSize (64 bytes, clause 4.4.2) minus the 4-byte FCS
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD  # EtherTypes (IEEE registry)
AF_INET, AF_INET6_DARWIN = 2, 30  # DLT_NULL address families (macOS <sys/socket.h>)
ARPHRD_ETHER = 1  # Linux <linux/if_arp.h>, in SLL headers
PACKET_HOST, PACKET_OUTGOING = 0, 4  # Linux <linux/if_packet.h> packet types


def ms(value: float) -> int:
    """Milliseconds after T0 as nanoseconds (rounded: 10.1 ms -> 10_100_000 ns)."""
    return round(value * 1_000_000)


def filler(size: int, label: str) -> bytes:
    """Deterministic readable payload of exactly ``size`` bytes."""
    unit = f"{label} ".encode()
    return (unit * (size // len(unit) + 1))[:size]


@dataclass(frozen=True)
class Pair:
    """The client and server sockets of one conversation."""

    cli: str
    srv: str
    cport: int
    sport: int

    def ip(self, from_cli: bool, ident: int, df: bool = True) -> Packet:
        """IP header from one side to the other (IPv6 when the address has a colon)."""
        src, dst = (self.cli, self.srv) if from_cli else (self.srv, self.cli)
        if ":" in src:
            return IPv6(src=src, dst=dst, hlim=64)
        return IP(src=src, dst=dst, ttl=64, id=ident, flags="DF" if df else 0)

    def ports(self, from_cli: bool) -> tuple[int, int]:
        return (self.cport, self.sport) if from_cli else (self.sport, self.cport)


@dataclass
class Step:
    """One packet of a conversation: time after T0, direction, and its IP packet."""

    t_ns: int
    from_cli: bool
    pkt: Packet


@dataclass
class Talk:
    """The packets of one conversation; tracks each side's next TCP sequence number."""

    pair: Pair
    isn_cli: int = 0
    isn_srv: int = 0
    steps: list[Step] = field(default_factory=list)
    _ip_id: dict[bool, int] = field(default_factory=lambda: {CLI: 0x1000, SRV: 0x2000})

    def __post_init__(self) -> None:
        self._next = {CLI: self.isn_cli, SRV: self.isn_srv}

    def _l3(self, from_cli: bool, df: bool = True) -> Packet:
        self._ip_id[from_cli] += 1
        return self.pair.ip(from_cli, self._ip_id[from_cli], df)

    def tcp(self, t_ns: int, from_cli: bool, flags: str, size: int = 0) -> None:
        """A segment with Scapy flag letters (S A F R P); ACK acks all the peer sent."""
        seq = self._next[from_cli]
        ack = self._next[not from_cli] if "A" in flags else 0
        sport, dport = self.pair.ports(from_cli)
        opts = [("MSS", MSS)] if "S" in flags else []
        pkt = self._l3(from_cli) / TCP(sport=sport, dport=dport, flags=flags, seq=seq,
                                      ack=ack, window=WINDOW, options=opts)
        if size:
            pkt = pkt / Raw(filler(size, "client" if from_cli else "server"))
        # SYN and FIN take one sequence number each (RFC 9293 section 3.4); RST none.
        self._next[from_cli] = (seq + size + ("S" in flags) + ("F" in flags)) % 2**32
        self.steps.append(Step(t_ns, from_cli, pkt))

    def handshake(self, t_ns: int, rtt_ns: int = ms(10)) -> None:
        """SYN, SYN-ACK one RTT later, the client's ACK 0.1 ms after that."""
        self.tcp(t_ns, CLI, "S")
        self.tcp(t_ns + rtt_ns, SRV, "SA")
        self.tcp(t_ns + rtt_ns + ms(0.1), CLI, "A")

    def resend(self, t_ns: int, index: int) -> None:
        """The same bytes as packet ``index`` again (a retransmission)."""
        self.steps.append(Step(t_ns, self.steps[index].from_cli, self.steps[index].pkt))

    def udp(self, t_ns: int, from_cli: bool, payload: bytes, df: bool = True) -> None:
        sport, dport = self.pair.ports(from_cli)
        pkt = self._l3(from_cli, df) / UDP(sport=sport, dport=dport) / Raw(payload)
        self.steps.append(Step(t_ns, from_cli, pkt))

    def echo(self, t_ns: int, from_cli: bool, seq: int) -> None:
        """ICMP echo request (client) or reply (server), id 0x0777, 56 data bytes."""
        icmp = ICMP(type=8 if from_cli else 0, id=0x0777, seq=seq)
        self.steps.append(Step(t_ns, from_cli, self._l3(from_cli) / icmp / Raw(filler(56, "ping"))))


Link = Callable[[bool, Packet], bytes]


def _macs(from_cli: bool) -> tuple[str, str]:
    return (MAC_CLI, MAC_SRV) if from_cli else (MAC_SRV, MAC_CLI)


def _mac8(mac: str) -> bytes:
    """A MAC in the 8-byte address field of the SLL headers (zero padded)."""
    return bytes.fromhex(mac.replace(":", "")) + b"\x00\x00"


def _ethertype(l3: Packet) -> int:
    return ETH_P_IPV6 if isinstance(l3, IPv6) else ETH_P_IP


def eth(from_cli: bool, l3: Packet) -> bytes:
    src, dst = _macs(from_cli)
    return bytes(Ether(src=src, dst=dst) / l3)


def eth_vlan10(from_cli: bool, l3: Packet) -> bytes:
    """802.1Q VLAN 10; the server tags with priority 5 so the TCI is not just the id."""
    src, dst = _macs(from_cli)
    tag = Dot1Q(vlan=10, prio=0 if from_cli else 5)
    return bytes(Ether(src=src, dst=dst) / tag / l3).ljust(ETHER_MIN, b"\x00")


def eth_qinq(from_cli: bool, l3: Packet) -> bytes:
    """802.1ad service tag 100 (TPID 0x88a8) outside an 802.1Q customer tag 200."""
    src, dst = _macs(from_cli)
    return bytes(Ether(src=src, dst=dst) / Dot1AD(vlan=100) / Dot1Q(vlan=200) / l3)


def sll(from_cli: bool, l3: Packet) -> bytes:
    head = CookedLinux(pkttype=PACKET_OUTGOING if from_cli else PACKET_HOST,
                       lladdrtype=ARPHRD_ETHER, lladdrlen=6, src=_mac8(_macs(from_cli)[0]),
                       proto=_ethertype(l3))
    return bytes(head / l3)


def sll2(from_cli: bool, l3: Packet) -> bytes:
    head = CookedLinuxV2(proto=_ethertype(l3), ifindex=2, lladdrtype=ARPHRD_ETHER,
                         pkttype=PACKET_OUTGOING if from_cli else PACKET_HOST, lladdrlen=6,
                         src=_mac8(_macs(from_cli)[0]))
    return bytes(head / l3)


def raw(from_cli: bool, l3: Packet) -> bytes:
    return bytes(l3)


def null(from_cli: bool, l3: Packet) -> bytes:
    family = AF_INET6_DARWIN if isinstance(l3, IPv6) else AF_INET
    return bytes(Loopback(type=family) / l3)


def records(steps: list[Step], link: Link) -> list[Record]:
    """Frames in time order (sorted is stable: equal times keep their order)."""
    out = []
    for step in sorted(steps, key=lambda s: s.t_ns):
        data = link(step.from_cli, step.pkt)
        out.append(Record(T0_NS + step.t_ns, data, len(data)))
    return out
