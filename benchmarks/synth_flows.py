"""Packet skeletons of synthetic flows, built for many flows at once.

A *skeleton* holds, for every packet of a set of flows, the local flow index,
the gap since the flow's previous packet (seconds), the direction (0 = sent by
the flow's first sender, the client; 1 = by the other side), the TCP flags, the
transport payload length and the transport header length. Flows are laid out
one after another (all packets of flow 0, then flow 1, ...), so per-flow
sequences are segmented scans over contiguous runs: there is no Python loop per
packet or per flow, only per packet *shape* (a handful of templates).

The traffic model follows the mix of ../shared/tools/gen_pcap.py (handshake,
request/response rounds of MSS-sized segments with a delayed ACK every second
segment, interactive sessions, FIN/RST teardowns, DNS, UDP streams), written
anew in vectorized form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
U8 = NDArray[np.uint8]
Rng = np.random.Generator

# TCP flag bits, RFC 9293 section 3.1.
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

# Largest gap between two packets of one flow (s): below Zeek's 60 s UDP and
# TCP-handshake inactivity timeout (ZEEK-FACTS.md section 3), so no timeout
# splits a flow and 5-tuple aggregation equals flows.
MAX_GAP_S = 30.0

# Teardown templates of established TCP flows: (direction, flags) per packet and
# the Zeek conn_state they give (SEMANTICS.md section 4: both CLOSED -> SF;
# originator RESET with the responder established -> RSTO; responder RESET with
# the originator established or closed -> RSTR; no teardown -> S1).
TEARDOWNS: list[tuple[list[tuple[int, int]], str]] = [
    ([(0, FIN | ACK), (1, FIN | ACK), (0, ACK)], "SF"),  # client closes
    ([(1, FIN | ACK), (0, FIN | ACK), (1, ACK)], "SF"),  # server closes
    ([(0, FIN | ACK), (1, ACK), (1, FIN | ACK), (0, ACK)], "SF"),  # 4-packet close
    ([(1, FIN | ACK), (0, ACK), (0, FIN | ACK), (1, ACK)], "SF"),
    ([(0, RST | ACK)], "RSTO"),
    ([(1, RST | ACK)], "RSTR"),
    ([(0, RST)], "RSTO"),
    ([(1, RST)], "RSTR"),
    ([(0, FIN | ACK), (1, RST | ACK)], "RSTR"),  # FIN answered by RST
    ([], "S1"),  # still open at the end
]
TD_FIN = np.array([0, 1, 2, 3])  # teardown indexes of kind tcp-fin
TD_RST = np.array([4, 5, 6, 7, 8])  # of kind tcp-rst
TD_OPEN = 9  # of kind tcp-open


@dataclass
class Skeleton:
    """Per-packet columns of a set of flows, grouped by flow in flow order."""

    flow: I64
    gap: F64
    dir: U8
    flags: U8
    plen: I64
    l4hl: I64

    @staticmethod
    def concat(parts: list[Skeleton]) -> Skeleton:
        """Join skeletons whose flow indexes are disjoint, then regroup by flow."""
        cols = {k: np.concatenate([getattr(p, k) for p in parts]) for k in Skeleton.__annotations__}
        order = np.argsort(cols["flow"], kind="stable")
        return Skeleton(**{k: v[order] for k, v in cols.items()})


def segments(counts: I64) -> tuple[I64, I64]:
    """For runs of ``counts`` packets: the run index and the position inside it, per packet."""
    run = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return run, np.arange(int(counts.sum())) - starts[run]


def seg_cumsum_excl(x: I64, flow: I64) -> I64:
    """Exclusive cumulative sum of ``x`` restarting at each new flow (grouped input)."""
    excl = np.cumsum(x) - x
    if len(x) == 0:
        return excl
    first = np.flatnonzero(np.r_[True, flow[1:] != flow[:-1]])
    base = np.repeat(excl[first], np.diff(np.r_[first, len(x)]))
    return excl - base


def from_templates(
    ids: I64, flows: I64, tmpl: list[list[tuple[int, int, int, float, float]]], rtt: F64, l4hl: I64
) -> Skeleton:
    """Flows of fixed shape: ``tmpl[i]`` lists (dir, flags, plen, gap_s, gap_rtts) per packet.

    Flow ``flows[j]`` takes template ``ids[j]``; a packet's gap is
    ``gap_s + gap_rtts * rtt[j]``. ``l4hl[j]`` is the header length of its
    packets (RSTs get 20, as a RST carries no options).
    """
    rows = np.array([p for t in tmpl for p in t], dtype=np.float64).reshape(-1, 5)
    lens = np.array([len(t) for t in tmpl])
    offs = np.cumsum(lens) - lens
    j, pos = segments(lens[ids])
    r = rows[offs[ids][j] + pos]
    flags = r[:, 1].astype(np.uint8)
    hl = np.where((flags & RST) != 0, 20, l4hl[j]).astype(np.int64)
    return Skeleton(
        flow=flows[j],
        gap=r[:, 3] + r[:, 4] * rtt[j],
        dir=r[:, 0].astype(np.uint8),
        flags=flags,
        plen=r[:, 2].astype(np.int64),
        l4hl=hl,
    )


@dataclass
class TcpParams:
    """Per-flow parameters of established TCP flows."""

    m: I64  # packets in the data phase
    teardown: I64  # index into TEARDOWNS
    rtt: F64  # round-trip time (s)
    rate: F64  # sender pacing (bit/s)
    use_ts: NDArray[np.bool_]  # TCP timestamp option on every segment
    interactive: NDArray[np.bool_]
    upload: NDArray[np.bool_]  # the client sends the bulk data
    rounds: I64  # request/response rounds of a bulk flow

    @staticmethod
    def draw(rng: Rng, m: I64, teardown: I64) -> TcpParams:
        """Random parameters (log-normal RTT and rate as gen_pcap; 25 % of short flows interactive)."""
        n = len(m)
        return TcpParams(
            m=m,
            teardown=teardown,
            rtt=np.clip(rng.lognormal(np.log(0.02), 1.0, n), 1e-4, 0.6),
            rate=np.clip(rng.lognormal(np.log(20e6), 1.2, n), 1e6, 1e9),
            use_ts=rng.random(n) < 0.7,
            interactive=(m < 500) & (rng.random(n) < 0.25),
            upload=rng.random(n) < 0.15,
            rounds=1 + np.minimum(rng.geometric(0.5, n) - 1, m // 8),
        )


def established_tcp(rng: Rng, flows: I64, p: TcpParams) -> Skeleton:
    """Handshake, data phase and teardown of established TCP flows."""
    td_dir = np.array([d for t, _ in TEARDOWNS for d, _f in t], dtype=np.int64)
    td_flags = np.array([f for t, _ in TEARDOWNS for _d, f in t], dtype=np.int64)
    td_len = np.array([len(t) for t, _ in TEARDOWNS])
    td_off = np.cumsum(td_len) - td_len
    j, pos = segments(3 + p.m + td_len[p.teardown])
    n = len(j)
    mss = np.where(p.use_ts, 1448, 1460)[j]  # Ethernet MSS with and without the 12-byte TS option
    dirn = np.zeros(n, np.int64)
    flags = np.zeros(n, np.int64)
    plen = np.zeros(n, np.int64)
    gap = np.zeros(n)
    hs = pos < 3
    hpos = pos[hs]
    dirn[hs] = np.array([0, 1, 0])[hpos]
    flags[hs] = np.array([SYN, SYN | ACK, ACK])[hpos]
    gap[hs] = np.where(
        hpos == 1, p.rtt[j[hs]], np.where(hpos == 2, rng.exponential(1e-4, len(hpos)) + 1e-5, 0.0)
    )
    data = (~hs) & (pos < 3 + p.m[j])
    _data_phase(
        rng, p, j[data], pos[data] - 3, mss[data], (dirn, flags, plen, gap), np.flatnonzero(data)
    )
    td = pos >= 3 + p.m[j]
    k = pos[td] - 3 - p.m[j[td]]
    ti = td_off[p.teardown[j[td]]] + k
    dirn[td] = td_dir[ti]
    flags[td] = td_flags[ti]
    turn = (k > 0) & (td_dir[ti] != td_dir[ti - 1])
    gap[td] = np.where(turn, p.rtt[j[td]] * 0.5, rng.exponential(0.01, len(k)) + 1e-4)
    hl = np.where(p.use_ts, 32, 20)[j]
    hl = np.where(hs & (pos < 2), np.where(p.use_ts, 40, 32)[j], hl)
    hl = np.where((flags & RST) != 0, 20, hl)
    return Skeleton(
        flow=flows[j],
        gap=np.minimum(gap, MAX_GAP_S),
        dir=dirn.astype(np.uint8),
        flags=flags.astype(np.uint8),
        plen=plen,
        l4hl=hl,
    )


def _data_phase(
    rng: Rng, p: TcpParams, j: I64, i: I64, mss: I64, out: tuple[I64, I64, I64, F64], at: I64
) -> None:
    """Fill the data-phase packets (flow ``j``, position ``i`` in the phase) into ``out`` at ``at``."""
    dirn, flags, plen, gap = out
    n = len(j)
    inter = p.interactive[j]
    # Interactive: alternating small PSH|ACK segments, one in five a pure ACK.
    idir = i % 2
    pure = (rng.random(n) < 0.2) & (i > 0)
    ilen = np.where(pure, 0, rng.integers(20, 400, n))
    iflags = np.where(pure, ACK, PSH | ACK)
    igap = np.where(idir == 1, p.rtt[j] + rng.exponential(0.002, n), rng.exponential(0.3, n))
    # Bulk: rounds of [request, D, D, A, D, D, A, ...], the round's last data segment partial.
    rl = -(-p.m[j] // p.rounds[j])  # round length (ceil)
    rnd, q = i // rl, i % rl
    rlen = np.minimum(rl, p.m[j] - rnd * rl)  # this round's actual length
    req = q == 0
    isdata = (~req) & ((q - 1) % 3 < 2)
    last_q = np.where((rlen - 2) % 3 == 2, rlen - 2, rlen - 1)
    lastdata = isdata & (q == last_q)
    ddir = np.where(p.upload[j], 0, 1)
    bdir = np.where(req, 0, np.where(isdata, ddir, 1 - ddir))
    reqlen = np.clip(rng.lognormal(5.8, 0.8, n), 40, 1400).astype(np.int64)
    blen = np.where(
        req, reqlen, np.where(lastdata, rng.integers(1, mss + 1), np.where(isdata, mss, 0))
    )
    bflags = np.where(req | lastdata, PSH | ACK, ACK)
    prev = np.r_[0, bdir[:-1]]
    prev[i == 0] = 0  # the handshake's last packet is the client's ACK
    bgap = np.where(
        bdir != prev,
        np.where(
            bdir == 1, p.rtt[j] * 0.5 + rng.exponential(0.003, n), rng.exponential(5e-5, n) + 1e-5
        ),
        blen * 8.0 / p.rate[j] + rng.exponential(2e-5, n),
    )
    bgap = np.where(req, rng.exponential(0.05, n) + 1e-4, bgap)
    dirn[at] = np.where(inter, idir, bdir)
    flags[at] = np.where(inter, iflags, bflags)
    plen[at] = np.where(inter, ilen, blen)
    gap[at] = np.where(inter, igap, bgap)


# UDP stream classes (server port -> shape), as gen_pcap's QUIC-like, RTP-like, NTP, syslog.
UDP_STREAM_PORTS = np.array([443, 443, 443, 5004, 123, 514, 1194, 3478])


def udp_streams(rng: Rng, flows: I64, port: I64, k: I64) -> Skeleton:
    """UDP streams of ``k`` packets (NTP: always one exchange); the client sends first."""
    k = np.where(port == 123, 2, np.maximum(k, 2))
    j, pos = segments(k)
    n = len(j)
    pt = port[j]
    r = rng.random(n)
    dirn = np.select([pt == 123, pt == 514, pt == 5004], [pos % 2, 0 * pos, r < 0.5], r < 0.75)
    dirn = np.where(pos == 0, 0, dirn).astype(np.uint8)
    quic = np.where(dirn == 1, rng.integers(1200, 1351, n), rng.integers(30, 80, n))
    plen = np.select(
        [pt == 123, pt == 514, pt == 5004],
        [48 + 0 * pos, rng.integers(60, 400, n), 172 + 0 * pos],
        np.where(pos == 0, 1250, quic),
    )
    gap = np.select(
        [pt == 123, pt == 514, pt == 5004],
        [0.02 + 0 * r, rng.exponential(0.5, n), 0.01 + rng.exponential(1e-3, n)],
        rng.exponential(4e-4, n),
    )
    gap = np.minimum(np.where(pos == 0, 0.0, gap), MAX_GAP_S)
    return Skeleton(
        flow=flows[j],
        gap=gap,
        dir=dirn,
        flags=np.zeros(n, np.uint8),
        plen=plen.astype(np.int64),
        l4hl=np.full(n, 8, np.int64),
    )


DNS_QUERY_LEN = 33  # 12-byte header + www.example.com A IN (RFC 1035 section 4.1)
DNS_ANSWER_LEN = 16  # one compressed A record (RFC 1035 section 4.1.3)
# DNS exchanges: answered; unanswered; retried after 1 s then answered.
DNS_TEMPLATES = [
    [(0, 0, DNS_QUERY_LEN, 0.0, 0.0), (1, 0, -1, 0.0, 1.0)],
    [(0, 0, DNS_QUERY_LEN, 0.0, 0.0)],
    [(0, 0, DNS_QUERY_LEN, 0.0, 0.0), (0, 0, DNS_QUERY_LEN, 1.0, 0.0), (1, 0, -1, 0.0, 1.0)],
]


def dns(rng: Rng, flows: I64) -> Skeleton:
    """DNS over UDP: 90 % answered, 5 % unanswered, 5 % retried (as gen_pcap)."""
    n = len(flows)
    r = rng.random(n)
    ids = np.where(r < 0.05, 1, np.where(r < 0.10, 2, 0))
    rtt = np.clip(rng.lognormal(np.log(0.015), 0.8, n), 2e-4, 0.5)
    sk = from_templates(ids, np.arange(n), DNS_TEMPLATES, rtt, np.full(n, 8, np.int64))
    answers = rng.integers(1, 17, n)
    sk.plen = np.where(sk.plen < 0, DNS_QUERY_LEN + DNS_ANSWER_LEN * answers[sk.flow], sk.plen)
    sk.flow = flows[sk.flow]
    return sk
