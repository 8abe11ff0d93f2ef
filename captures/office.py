"""Build captures/office.pcap: ten minutes of a small office's traffic, for analysis notebooks.

    .venv/bin/python captures/office.py            # rewrites captures/office.pcap
    .venv/bin/python captures/office.py OUT.pcap   # writes it elsewhere

Four clients (192.0.2.10-13, one also on IPv6) browse the web (a DNS query, then HTTP
or TLS), download from a CDN, work over SSH, make a video call; at 5 minutes a scanner sweeps ports 1-1024
of the web server; a client keeps trying a service that is not running; a database
connection falls silent longer than TCP's inactivity timeout and then goes on. Everything comes
from one seeded random generator and the fixed start of kit.py, so the bytes are the
same on every run. ``PLAN`` says what was put in, for the tests and the notebooks;
captures/README.md describes it for people.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # kit.py, writers.py beside us
from kit import CLI, LINKTYPE_ETHERNET, SRV, Pair, Step, Talk, eth, ms, records
from writers import pcap_bytes

SECONDS = 600
SEG = 1448  # TCP payload per full segment: 1500-byte MTU, timestamps option (Linux)
CLIENTS = ["192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13"]
CLIENT6 = "2001:db8::13"  # 192.0.2.13's IPv6 address
WEB, CDN, SSH, RESOLVER = "198.51.100.20", "198.51.100.30", "198.51.100.22", "198.51.100.53"
WEB6, RESOLVER6 = "2001:db8::20", "2001:db8::53"
DATABASE = "198.51.100.40"
CALL_PEER, CALL_PORT, CALL_START_S = "203.0.113.50", 50_000, 200.0
SCANNER, SCAN_PORTS, SCAN_START_S = "203.0.113.66", range(1, 1025), 300.0
OPEN_PORTS = (80, 443)  # the web server's listening ports: the scan's SYN-ACKs
REFUSED_PORT, REFUSED_TRIES = 8080, 3
IDLE_START_S, IDLE_GAP_S = 60.0, 360.0  # the database connection's silence: > TCP's 300 s


@dataclass
class Plan:
    """What the capture holds, by construction (the truth the tests compare with)."""

    visits: int = 0          # DNS query + web connection pairs
    downloads: int = 0       # large TLS downloads from the CDN
    dns: int = 0             # DNS query/answer exchanges (one UDP flow each)
    scanned: int = 0         # ports probed by the scanner, one SYN each
    refused: int = REFUSED_TRIES
    talks: list[Talk] = field(default_factory=list)


class Ports:
    """Ephemeral source ports per client, starting at a random point of Linux's range."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.next = rng, {}

    def __call__(self, host: str) -> int:
        port = self.next.setdefault(host, self.rng.randrange(32768, 50000))
        self.next[host] = port + 1
        return port


def at(seconds: float) -> int:
    """Seconds after the start as nanoseconds, on whole microseconds (a classic pcap's
    resolution)."""
    return round(seconds * 1_000_000) * 1000


def dns_message(ident: int, name: str, qtype: int, answer: bytes | None) -> bytes:
    """A DNS query (answer None) or its response with one record (RFC 1035 section 4.1)."""
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    question += struct.pack("!HH", qtype, 1)
    if answer is None:
        return struct.pack("!6H", ident, 0x0100, 1, 0, 0, 0) + question
    record = struct.pack("!HHHIH", 0xC00C, qtype, 1, 300, len(answer)) + answer
    return struct.pack("!6H", ident, 0x8180, 1, 1, 0, 0) + question + record


def lookup(plan: Plan, t_ns: int, client: str, resolver: str, name: str, addr: str,
           port: int, rng: random.Random) -> int:
    """A DNS exchange for ``addr`` (A or AAAA); returns when the answer arrived."""
    v6 = ":" in addr
    answer = (bytes.fromhex("20010db8" + "0" * 20 + addr.rsplit(":", 1)[1].zfill(4)) if v6
              else bytes(int(b) for b in addr.split(".")))
    ident, qtype = rng.randrange(1 << 16), 28 if v6 else 1
    talk = Talk(Pair(client, resolver, port, 53))
    talk.udp(t_ns, CLI, dns_message(ident, name, qtype, None))
    done = t_ns + at(rng.uniform(0.002, 0.025))
    talk.udp(done, SRV, dns_message(ident, name, qtype, answer))
    plan.talks.append(talk)
    plan.dns += 1
    return done


def transfer(talk: Talk, t_ns: int, rtt: int, size: int, from_cli: bool) -> int:
    """``size`` bytes in full segments, ten per round trip, the receiver ACKing every
    second one (Linux's delayed ACK); returns the time of the last ACK."""
    sent, t = 0, t_ns
    while sent < size:
        burst = 0
        while sent < size and burst < 10:
            n = min(SEG, size - sent)
            sent, burst = sent + n, burst + 1
            talk.tcp(t + burst * 12_000, from_cli, "PA" if sent >= size else "A", n)
            if burst % 2 == 0 or sent >= size:
                talk.tcp(t + burst * 12_000 + rtt // 2000 * 1000, not from_cli, "A")
        t += rtt
    return t


def connection(talk: Talk, t_ns: int, rtt: int, exchanges: list[tuple[int, int]]) -> int:
    """Handshake, request/response exchanges, a close by the client; returns its end."""
    talk.handshake(t_ns, rtt)
    t = t_ns + rtt + ms(0.2)
    for request, response in exchanges:
        talk.tcp(t, CLI, "PA", request)
        t = transfer(talk, t + rtt, rtt, response, SRV) + ms(1)
    talk.tcp(t, CLI, "FA")
    talk.tcp(t + rtt, SRV, "FA")
    talk.tcp(t + rtt + ms(0.1), CLI, "A")
    return t + rtt


TLS_HELLO = [(517, 4316), (126, 258)]  # ClientHello / ServerHello..certificates; Finished


def visit(plan: Plan, rng: random.Random, ports: Ports, t_ns: int, client: str) -> None:
    """A page: look the server up, then one HTTP or TLS connection with a few requests."""
    v6 = client == CLIENTS[3] and rng.random() < 0.5
    src, server = (CLIENT6, WEB6) if v6 else (client, WEB)
    tls = v6 or rng.random() < 0.6
    name = "www.example.com"
    ready = lookup(plan, t_ns, src, RESOLVER6 if v6 else RESOLVER, name, server, ports(src), rng)
    pages = [(rng.randrange(300, 700), int(rng.lognormvariate(9.0, 1.0)))
             for _ in range(rng.randrange(1, 5))]
    talk = Talk(Pair(src, server, ports(src), 443 if tls else 80), rng.getrandbits(32),
                rng.getrandbits(32))
    connection(talk, ready + ms(0.5), at(rng.uniform(0.008, 0.030)), (TLS_HELLO if tls else []) + pages)
    plan.talks.append(talk)
    plan.visits += 1


def download(plan: Plan, rng: random.Random, ports: Ports, t_ns: int, client: str) -> None:
    """A software update: one TLS connection pulling a few hundred KB from the CDN."""
    ready = lookup(plan, t_ns, client, RESOLVER, "cdn.example.net", CDN, ports(client), rng)
    talk = Talk(Pair(client, CDN, ports(client), 443), rng.getrandbits(32), rng.getrandbits(32))
    connection(talk, ready + ms(0.5), at(rng.uniform(0.015, 0.040)),
               TLS_HELLO + [(420, rng.randrange(150_000, 400_000))])
    plan.talks.append(talk)
    plan.downloads += 1


def ssh_work(plan: Plan, rng: random.Random, ports: Ports) -> None:
    """192.0.2.10's SSH session for the whole capture: typing, a 512 KB copy at 400 s."""
    rtt, start, stop = ms(12), 2.0, 590.0
    talk = Talk(Pair(CLIENTS[0], SSH, ports(CLIENTS[0]), 22), rng.getrandbits(32),
                rng.getrandbits(32))
    talk.handshake(at(start), rtt)
    talk.tcp(at(start + 0.1), CLI, "PA", 41)  # the protocol version strings
    talk.tcp(at(start + 0.1) + rtt, SRV, "PA", 41)
    t, copied = start + 0.6, False
    while t < stop:
        if not copied and t >= 400:
            t, copied = transfer(talk, at(t), rtt, 524_288, CLI) / 1e9 + 0.5, True
            continue
        talk.tcp(at(t), CLI, "PA", 36)  # a keystroke and its echo
        talk.tcp(at(t) + rtt, SRV, "PA", 36)
        talk.tcp(at(t) + rtt + ms(40), CLI, "A")
        t += rng.expovariate(1 / 3.0)
    talk.tcp(at(stop + 0.1), CLI, "FA")
    talk.tcp(at(stop + 0.1) + rtt, SRV, "FA")
    talk.tcp(at(stop + 0.1) + rtt + ms(0.1), CLI, "A")
    plan.talks.append(talk)


def idle_database(plan: Plan, rng: random.Random, ports: Ports) -> None:
    """192.0.2.12's pooled PostgreSQL connection: queries from 20 s, silent from 60 s for
    IDLE_GAP_S, then queries again until 450 s; never closed. The gap is longer than TCP's
    inactivity timeout, so the connection ends 'idle' and what follows is a new flow seen
    from the middle."""
    rtt = ms(2)
    talk = Talk(Pair(CLIENTS[2], DATABASE, ports(CLIENTS[2]), 5432), rng.getrandbits(32),
                rng.getrandbits(32))
    talk.handshake(at(20.0), rtt)
    t = 20.1
    while t < 450.0:
        talk.tcp(at(t), CLI, "PA", rng.randrange(60, 300))  # a query, its rows
        talk.tcp(at(t) + rtt, SRV, "PA", rng.randrange(200, 1400))
        talk.tcp(at(t) + rtt + ms(40), CLI, "A")
        t += rng.expovariate(1 / 4.0)
        if IDLE_START_S <= t < IDLE_START_S + IDLE_GAP_S:
            t = IDLE_START_S + IDLE_GAP_S
    plan.talks.append(talk)


def video_call(plan: Plan, rng: random.Random, ports: Ports) -> None:
    """192.0.2.13 in a 30-second video call at 200 s: UDP media both ways, ten datagrams a
    second each, between dynamic ports (the peer's is in IANA's 49152-65535)."""
    talk = Talk(Pair(CLIENTS[3], CALL_PEER, ports(CLIENTS[3]), CALL_PORT))
    for tick in range(300):
        t = CALL_START_S + tick / 10
        talk.udp(at(t), CLI, bytes(rng.randrange(700, 1100)))
        talk.udp(at(t + 0.037), SRV, bytes(rng.randrange(700, 1100)))
    plan.talks.append(talk)


def scan(plan: Plan, rng: random.Random) -> None:
    """A SYN scan of the web server's ports 1-1024 in random order, 0.5 ms apart, from one
    source port: closed ports answer RST-ACK, open ones SYN-ACK and get the scanner's RST."""
    order = list(SCAN_PORTS)
    rng.shuffle(order)
    for i, port in enumerate(order):
        talk = Talk(Pair(SCANNER, WEB, 61234, port), rng.getrandbits(32),
                    rng.getrandbits(32) if port in OPEN_PORTS else 0)
        t = at(SCAN_START_S + 0.0005 * i)
        talk.tcp(t, CLI, "S")
        if port in OPEN_PORTS:
            talk.tcp(t + ms(0.3), SRV, "SA")
            talk.tcp(t + ms(0.4), CLI, "R")
        else:
            talk.tcp(t + ms(0.3), SRV, "RA")
        plan.talks.append(talk)
        plan.scanned += 1


def refused(plan: Plan, rng: random.Random, ports: Ports) -> None:
    """192.0.2.11 tries a service on port 8080 that is not running: three refusals."""
    for i in range(REFUSED_TRIES):
        talk = Talk(Pair(CLIENTS[1], WEB, ports(CLIENTS[1]), REFUSED_PORT), rng.getrandbits(32))
        t = at(120.0 + i)
        talk.tcp(t, CLI, "S")
        talk.tcp(t + ms(0.4), SRV, "RA")
        plan.talks.append(talk)


def build(seed: int = 2026) -> tuple[bytes, Plan]:
    """The capture's bytes and what it holds."""
    rng, plan = random.Random(seed), Plan()
    ports = Ports(rng)
    for client in CLIENTS:
        t = rng.uniform(1, 20)
        while t < SECONDS - 15:
            visit(plan, rng, ports, at(t), client)
            t += rng.expovariate(1 / 40.0)
    for t, client in ((150.0, CLIENTS[1]), (330.0, CLIENTS[3]), (480.0, CLIENTS[0])):
        download(plan, rng, ports, at(t), client)
    ssh_work(plan, rng, ports)
    idle_database(plan, rng, ports)
    video_call(plan, rng, ports)
    scan(plan, rng)
    refused(plan, rng, ports)
    steps: list[Step] = [s for talk in plan.talks for s in talk.steps]
    return pcap_bytes(records(steps, eth), LINKTYPE_ETHERNET), plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path,
                        default=Path(__file__).resolve().parent / "office.pcap")
    args = parser.parse_args(argv)
    data, plan = build()
    args.out.write_bytes(data)
    print(f"wrote {args.out}: {len(data):,} bytes, {plan.visits} visits, {plan.downloads} "
          f"downloads, {plan.dns} DNS lookups, {plan.scanned} ports scanned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
