"""Traffic modes of the synthetic generator: who talks to whom, and which flow kinds.

Each mode hands out *chunks*: the metadata of a batch of new flows (addresses,
ports, kind, expected Zeek conn_state) and their packet skeleton. The driver in
synth.py places the chunks in time and streams them to disk.

5-tuples are unique per file by construction, without remembering used keys
(which would grow with the file): flow number ``g`` maps through a bijection
onto a (client, client port) pair, so no two flows share a client socket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import synth_flows as sf
from numpy.typing import NDArray
from synth_flows import ACK, I64, RST, SYN, Rng, Skeleton

KINDS = [
    "tcp-fin",
    "tcp-rst",
    "tcp-open",
    "tcp-rejected",
    "tcp-syn-only",
    "udp-dns",
    "udp-stream",
    "syn-flood",
    "scan-open",
    "scan-closed",
    "scan-filtered",
]
K = {name: i for i, name in enumerate(KINDS)}
STATES = ["SF", "S0", "S1", "REJ", "RSTO", "RSTR"]
ST = {name: i for i, name in enumerate(STATES)}

# Linux's default ephemeral port range, /proc/sys/net/ipv4/ip_local_port_range.
EPHEMERAL_LO, EPHEMERAL_N = 32768, 61000 - 32768
TCP_SERVER_PORTS = np.array(
    [443, 443, 443, 443, 80, 80, 22, 25, 993, 3306, 5432, 8080, 8443, 445, 3389]
)
LINUX_SYN_WINDOW = 64240  # Linux's initial window in a SYN (44 * 1460)
GOLDEN = 0.6180339887  # spreads consecutive flow numbers over the client space
KNUTH = 2654435761  # odd multiplier: a bijection modulo any power of two


@dataclass
class FlowMeta:
    """Per-flow columns of one chunk (addresses as two uint64 halves; IPv4 in ``*_lo``)."""

    v6: NDArray[np.bool_]
    proto: I64
    c_hi: NDArray[np.uint64]
    c_lo: NDArray[np.uint64]
    s_hi: NDArray[np.uint64]
    s_lo: NDArray[np.uint64]
    cport: I64
    sport: I64
    cmac: NDArray[np.uint64]
    kind: I64
    state: I64
    ttl_c: I64
    syn_win: I64
    srv_isn_zero: NDArray[np.bool_]  # the server's first segment is a RST answering a SYN: seq 0

    def take(self, idx: I64 | slice) -> FlowMeta:
        """The flows at ``idx``."""
        return FlowMeta(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


@dataclass
class Chunk:
    """New flows; ``start_us`` (offsets in the chunk) and ``span_us`` are None for Poisson arrivals."""

    meta: FlowMeta
    sk: Skeleton
    start_us: I64 | None = None
    span_us: int | None = None


def udp_states(meta: FlowMeta, sk: Skeleton) -> None:
    """Zeek's UDP conn_state: SF when both sides sent, S0 when only the originator did."""
    answered = np.bincount(sk.flow[sk.dir == 1], minlength=len(meta.kind)) > 0
    udp = meta.proto == 17
    meta.state[udp] = np.where(answered[udp], ST["SF"], ST["S0"])


class Clients:
    """Client hosts (10.0.0.0/8 and fd12:3456:7890::/48) and their ports, one pair per flow."""

    def __init__(self, rng: Rng, max_flows: int, est_flows: int) -> None:
        self.n = max(50, int(math.sqrt(est_flows) * 8), -(-max_flows // EPHEMERAL_N) + 1)
        self.space = self.n * EPHEMERAL_N
        self.mult = int(self.space * GOLDEN) | 1
        while math.gcd(self.mult, self.space) != 1:
            self.mult += 2
        self.offset = int(rng.integers(self.space))

    def pick(self, g: I64) -> tuple[I64, I64]:
        """Client index and port of flow numbers ``g`` (a bijection while g < space)."""
        if len(g) and int(g.max()) >= self.space:
            raise ValueError("more flows than client sockets; raise the packet estimate")
        x = (g * self.mult + self.offset) % self.space
        return x // EPHEMERAL_N, EPHEMERAL_LO + x % EPHEMERAL_N

    @staticmethod
    def addresses(ci: I64, v6: NDArray[np.bool_]) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
        """Distinct addresses per client index (odd multiplier: a bijection on 24 bits)."""
        host = (ci.astype(np.uint64) * np.uint64(KNUTH)) & np.uint64(0xFFFFFF)
        lo4 = np.uint64(10 << 24) | host
        hi = np.where(v6, np.uint64(0xFD12345678900001), np.uint64(0))
        lo = np.where(v6, np.uint64(0x1000) + host, lo4)
        return hi, lo


class MixMode:
    """The default mix of gen_pcap, or many short TCP flows (``short=True``)."""

    pps = 25_000.0  # mean packet rate, as gen_pcap's default duration
    chunk_flows = 4096

    def __init__(self, rng: Rng, packets: int, short: bool, ipv6_frac: float = 0.10) -> None:
        self.rng, self.short, self.ipv6_frac = rng, short, ipv6_frac
        self.udp_frac = 0.05 if short else 0.20
        self.ppf_max = int(min(100_000, max(100, packets // 10)))
        est = max(10, int(packets / (9 if short else 33)))
        self.clients = Clients(rng, packets, est)
        ns = max(50, int(math.sqrt(est) * 20))
        s4 = rng.integers(0x01000000, 0xDF000000, ns).astype(np.uint64)
        self.s4 = np.where(s4 >> np.uint64(24) == 10, s4 + np.uint64(1 << 24), s4)
        self.s6 = rng.integers(0, 2**56, (ns, 2), dtype=np.uint64)
        self.s6[:, 0] |= np.uint64(0x26 << 56)
        self.next_flow = 0

    def next_chunk(self) -> Chunk:
        """The next ``chunk_flows`` flows."""
        rng, n = self.rng, self.chunk_flows
        g = np.arange(self.next_flow, self.next_flow + n)
        self.next_flow += n
        meta = self._endpoints(g)
        r = rng.random(n)
        udp = rng.random(n) < self.udp_frac
        isdns = udp & ((rng.random(n) < 0.75) | self.short)
        cut = [0.70, 0.85, 0.87, 0.95] if self.short else [0.75, 0.85, 0.88, 0.94]
        tkind = np.searchsorted(cut, r, side="right")  # fin, rst, open, rejected, syn-only
        meta.kind = np.where(udp, np.where(isdns, K["udp-dns"], K["udp-stream"]), tkind)
        stream_port = rng.choice(sf.UDP_STREAM_PORTS, n)
        meta.proto = np.where(udp, 17, 6)
        meta.sport = np.where(
            isdns, 53, np.where(udp, stream_port, rng.choice(TCP_SERVER_PORTS, n))
        )
        sk = Skeleton.concat(self._skeletons(meta))
        udp_states(meta, sk)
        return Chunk(meta, sk)

    def _endpoints(self, g: I64) -> FlowMeta:
        """Addresses, ports and defaults of flows ``g``."""
        rng, n = self.rng, len(g)
        v6 = rng.random(n) < self.ipv6_frac
        ci, cport = self.clients.pick(g)
        c_hi, c_lo = Clients.addresses(ci, v6)
        si = rng.integers(0, len(self.s4), n)
        zero = np.zeros(n, np.int64)
        return FlowMeta(
            v6=v6,
            proto=zero,
            c_hi=c_hi,
            c_lo=c_lo,
            s_hi=np.where(v6, self.s6[si, 0], np.uint64(0)),
            s_lo=np.where(v6, self.s6[si, 1], self.s4[si]),
            cport=cport,
            sport=zero,
            cmac=np.uint64(0x020000000000) | ci.astype(np.uint64),
            kind=zero,
            state=zero.copy(),
            ttl_c=np.full(n, 64),
            syn_win=np.full(n, LINUX_SYN_WINDOW),
            srv_isn_zero=np.zeros(n, bool),
        )

    def _packet_budget(self, n: int) -> I64:
        """Packets per established flow: discrete Lomax with mean about 60, as gen_pcap."""
        alpha, lo = 1.3, 4
        scale = (60.0 - lo) * (alpha - 1.0)
        k = lo + np.floor(self.rng.pareto(alpha, n) * scale)
        return np.minimum(k, self.ppf_max).astype(np.int64)

    def _skeletons(self, meta: FlowMeta) -> list[Skeleton]:
        """Skeletons of every kind in the chunk; sets the TCP conn_states."""
        rng, kind = self.rng, meta.kind
        parts = []
        est = np.flatnonzero(kind <= K["tcp-open"])
        td = np.select(
            [kind[est] == K["tcp-fin"], kind[est] == K["tcp-rst"]],
            [rng.choice(sf.TD_FIN, len(est)), rng.choice(sf.TD_RST, len(est))],
            sf.TD_OPEN,
        )
        td_len = np.array([len(t) for t, _ in sf.TEARDOWNS])[td]
        if self.short:
            m = rng.integers(1, 7, len(est))
        else:
            m = np.maximum(0, np.maximum(self._packet_budget(len(est)), 7) - 3 - td_len)
        meta.state[est] = np.array([ST[s] for _, s in sf.TEARDOWNS])[td]
        parts.append(sf.established_tcp(rng, est, sf.TcpParams.draw(rng, m, td)))
        parts.append(self._failed_tcp(meta))
        dns = np.flatnonzero(kind == K["udp-dns"])
        parts.append(sf.dns(rng, dns))
        st = np.flatnonzero(kind == K["udp-stream"])
        parts.append(sf.udp_streams(rng, st, meta.sport[st], self._packet_budget(len(st))))
        return parts

    def _failed_tcp(self, meta: FlowMeta) -> Skeleton:
        """Rejected (SYN, RST|ACK: REJ) and unanswered (1-3 SYNs at 0, 1, 3 s: S0) attempts."""
        rng = self.rng
        idx = np.flatnonzero((meta.kind == K["tcp-rejected"]) | (meta.kind == K["tcp-syn-only"]))
        rej = meta.kind[idx] == K["tcp-rejected"]
        tmpl = [
            [(0, SYN, 0, 0.0, 0.0), (1, RST | ACK, 0, 0.0, 1.0)],
            [(0, SYN, 0, 0.0, 0.0)],
            [(0, SYN, 0, 0.0, 0.0), (0, SYN, 0, 1.0, 0.0)],
            [(0, SYN, 0, 0.0, 0.0), (0, SYN, 0, 1.0, 0.0), (0, SYN, 0, 2.0, 0.0)],
        ]
        ids = np.where(rej, 0, rng.integers(1, 4, len(idx)))
        rtt = np.clip(rng.lognormal(np.log(0.02), 1.0, len(idx)), 1e-4, 0.6)
        synhl = np.where(rng.random(len(idx)) < 0.7, 40, 32)
        meta.state[idx] = np.where(rej, ST["REJ"], ST["S0"])
        meta.srv_isn_zero[idx] = rej
        return sf.from_templates(ids, idx, tmpl, rtt, synhl)


def fixed_meta(
    n: int, client: tuple[I64, I64], server: tuple[int, int], kind: I64, state: I64
) -> FlowMeta:
    """IPv4 TCP flows from ``client`` (addresses, ports) to one ``server`` (address, port)."""
    return FlowMeta(
        v6=np.zeros(n, bool),
        proto=np.full(n, 6),
        c_hi=np.zeros(n, np.uint64),
        c_lo=client[0].astype(np.uint64),
        s_hi=np.zeros(n, np.uint64),
        s_lo=np.full(n, server[0], np.uint64),
        cport=client[1],
        sport=np.full(n, server[1]),
        cmac=np.full(n, 0x020000000001, np.uint64),
        kind=kind,
        state=state,
        ttl_c=np.full(n, 64),
        syn_win=np.full(n, LINUX_SYN_WINDOW),
        srv_isn_zero=np.zeros(n, bool),
    )
