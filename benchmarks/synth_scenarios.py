"""Attack-shaped modes of the generator: a spoofed SYN flood and an nmap-style SYN scan.

Expected Zeek conn_state of each flow (SEMANTICS.md section 4, rules in order):

- Flood SYN, or a scan probe to a *filtered* port (bare SYN, no answer): the
  originator is SYN_SENT and the responder INACTIVE -> rule 6, **S0** (history S).
- Probe to a *closed* port: SYN, then the target's RST|ACK. The responder is
  RESET while the originator is SYN_SENT -> rule 1, **REJ** (history Sr).
- Probe to an *open* port: SYN, the target's SYN-ACK, then the scanner's bare RST
  (its kernel has no socket for the half-open connection). The originator is
  RESET; the responder answered with a SYN-ACK, so it is SYN_ACK_SENT or
  ESTABLISHED, not "inactive" (INACTIVE or PARTIAL) -> rule 2 gives **RSTO**, not
  RSTOS0 (that needs an inactive responder). History ShR. The corpus agrees: a
  Zeek baseline in ../shared/corpus/zeek holds a ShR connection logged RSTO.

nmap retransmits a probe that got no answer, from the next source port (it
encodes the try number in the source port), so a filtered port gives two S0
flows on two distinct 5-tuples.
"""

from __future__ import annotations

import numpy as np
import synth_flows as sf
from synth_flows import ACK, RST, SYN, Rng, Skeleton
from synth_mix import EPHEMERAL_LO, EPHEMERAL_N, ST, Chunk, K, fixed_meta

MASK46 = np.uint64((1 << 46) - 1)
# Odd multipliers (splitmix64's), each a bijection modulo 2**46.
MIX1 = np.uint64(0x9E3779B97F4A7C15 & ((1 << 46) - 1) | 1)
MIX2 = np.uint64(0xBF58476D1CE4E5B9 & ((1 << 46) - 1) | 1)
FLOOD_SERVER = (0xCB007150, 80)  # 203.0.113.80:80, RFC 5737 TEST-NET-3
SCANNER = 0xC6336442  # 198.51.100.66, RFC 5737 TEST-NET-2
SCAN_TARGET = 0xCB00710A  # 203.0.113.10
NMAP_SYN_WINDOW = 1024  # window of nmap's raw SYN probes
NMAP_RETRY_S = 1.0  # about nmap's initial probe timeout
SCAN_OPEN, SCAN_FILTERED = 0.02, 0.15  # shares of open and filtered ports


def spoofed_sources(g: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (IPv4 source, port) per flow number: a bijection on 46 bits.

    31 bits pick an address in 1.0.0.0-128.255.255.255 and 15 bits a port in
    32768-65535, so two flow numbers never share a socket pair.
    """
    x = (g.astype(np.uint64) + np.uint64(offset)) & MASK46
    x = (x * MIX1) & MASK46
    x ^= x >> np.uint64(23)
    x = (x * MIX2) & MASK46
    return (np.uint64(0x01000000) + (x >> np.uint64(15))).astype(np.int64), (
        np.uint64(32768) + (x & np.uint64(0x7FFF))
    ).astype(np.int64)


class FloodMode:
    """``n`` bare SYNs from distinct spoofed sockets to one server (all S0)."""

    pps = 200_000.0
    chunk_flows = 1 << 18

    def __init__(self, rng: Rng, n: int) -> None:
        self.rng, self.n, self.done = rng, n, 0
        self.offset = int(rng.integers(0, 1 << 46))

    def next_chunk(self) -> Chunk | None:
        """The next batch of SYNs, or None when all are out."""
        k = min(self.chunk_flows, self.n - self.done)
        if k <= 0:
            return None
        g = np.arange(self.done, self.done + k)
        self.done += k
        meta = fixed_meta(
            k,
            spoofed_sources(g, self.offset),
            FLOOD_SERVER,
            np.full(k, K["syn-flood"]),
            np.full(k, ST["S0"]),
        )
        meta.ttl_c = self.rng.integers(32, 256, k)
        meta.syn_win = self.rng.integers(512, 65536, k)
        sk = Skeleton(
            flow=np.arange(k),
            gap=np.zeros(k),
            dir=np.zeros(k, np.uint8),
            flags=np.full(k, SYN, np.uint8),
            plen=np.zeros(k, np.int64),
            l4hl=np.full(k, 20, np.int64),
        )
        return Chunk(meta, sk)


class ScanMode:
    """One host SYN-scanning ``n`` ports (1..n, shuffled) of one target, as ``nmap -sS``."""

    pps = 3000.0  # probes per second (span only: this mode places its flows itself)
    chunk_flows = 0  # unused: a scan is one chunk

    def __init__(self, rng: Rng, n: int) -> None:
        if not 1 <= n <= 65535:
            raise ValueError(f"--scan-ports must be 1..65535, got {n}")
        self.rng, self.n, self.done = rng, n, False

    def next_chunk(self) -> Chunk | None:
        """All probes at once (a scan has at most 65535 ports), or None after."""
        if self.done:
            return None
        self.done = True
        rng, n = self.rng, self.n
        ports = rng.permutation(np.arange(1, n + 1))
        r = rng.random(n)
        status = np.where(r < SCAN_OPEN, 0, np.where(r < SCAN_OPEN + SCAN_FILTERED, 2, 1))
        retry = np.flatnonzero(status == 2)
        base = int(rng.integers(EPHEMERAL_LO, EPHEMERAL_LO + EPHEMERAL_N - 1))
        dport = np.r_[ports, ports[retry]]
        cport = np.r_[np.full(n, base), np.full(len(retry), base + 1)]
        status = np.r_[status, np.full(len(retry), 2)]
        kind = np.array([K["scan-open"], K["scan-closed"], K["scan-filtered"]])[status]
        state = np.array([ST["RSTO"], ST["REJ"], ST["S0"]])[status]
        total = len(dport)
        meta = fixed_meta(total, (np.full(total, SCANNER), cport), (SCAN_TARGET, 0), kind, state)
        meta.sport = dport
        meta.ttl_c = np.full(total, int(rng.integers(37, 60)))
        meta.syn_win = np.full(total, NMAP_SYN_WINDOW)
        meta.srv_isn_zero = status == 1
        first = np.arange(n) * (1e6 / self.pps) + rng.random(n) * 100
        start = np.r_[first, first[retry] + NMAP_RETRY_S * 1e6].astype(np.int64)
        tmpl = [
            [(0, SYN, 0, 0.0, 0.0), (1, SYN | ACK, 0, 0.0, 1.0), (0, RST, 0, 5e-5, 0.0)],
            [(0, SYN, 0, 0.0, 0.0), (1, RST | ACK, 0, 0.0, 1.0)],
            [(0, SYN, 0, 0.0, 0.0)],
        ]
        rtt = np.clip(rng.lognormal(np.log(5e-4), 0.3, total), 1e-4, 0.01)
        # nmap's probe carries only an MSS option (24-byte header), and so does the reply.
        sk = sf.from_templates(status, np.arange(total), tmpl, rtt, np.full(total, 24))
        return Chunk(meta, sk, start_us=start, span_us=int(start.max()) + 1)
