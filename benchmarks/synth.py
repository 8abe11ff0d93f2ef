#!/usr/bin/env python3
"""Synthetic Ethernet pcap captures with an exact per-flow truth table, streamed to disk.

Usage (run from anywhere; only numpy is needed)::

    synth.py -o std.pcap --truth std.csv --packets 1000000        # gen_pcap's mix
    synth.py -o short.pcap --truth short.csv --packets 1000000 --short-flows
    synth.py -o flood.pcap --truth flood.csv --syn-flood 10000000
    synth.py -o scan.pcap --truth scan.csv --port-scan [--scan-ports 5000]

Flows are made in chunks of time and their packets kept only until the chunk's
end time has passed, so memory follows the flows still open, not the file
size. Every 5-tuple is used by one flow only (no port reuse) and no flow has a
gap of 30 s or more, so per-5-tuple counts equal per-flow counts.

The truth CSV has one row per flow: ``proto, a_addr, a_port, b_addr, b_port,
a2b_pkts, a2b_bytes, b2a_pkts, b2a_bytes, kind, conn_state, a2b_ip_bytes,
b2a_ip_bytes``. Side a is the sender of the flow's first packet (the client,
always the Zeek originator here: its first packet is a bare SYN, or a UDP
datagram from an ephemeral port). ``*_bytes`` are frame bytes on the wire
(pcap orig_len), ``*_ip_bytes`` IP total lengths, ``conn_state`` the state
Zeek logs for the flow (reasoning in synth_flows.TEARDOWNS and synth_scenarios).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synth_csv as csvx
from synth_flows import ACK, FIN, RST, SYN, Skeleton, seg_cumsum_excl
from synth_mix import KINDS, LINUX_SYN_WINDOW, STATES, Chunk, FlowMeta, MixMode
from synth_pcap import PKT, file_header, lengths, records
from synth_scenarios import FloodMode, ScanMode

TRUTH_HEADER = (
    "proto,a_addr,a_port,b_addr,b_port,a2b_pkts,a2b_bytes,b2a_pkts,b2a_bytes,"
    "kind,conn_state,a2b_ip_bytes,b2a_ip_bytes\n"
)
DEFAULT_START = 1_700_000_000  # epoch of the first chunk (2023-11-14), as gen_pcap


class Mode(Protocol):
    """A source of flow chunks."""

    pps: float
    chunk_flows: int

    def next_chunk(self) -> Chunk | None: ...


@dataclass
class Stats:
    """What was written."""

    packets: int = 0
    flows: int = 0
    bytes: int = 0
    peak_pending: int = 0
    first_us: int = -1
    last_us: int = -1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-o", "--out", required=True, help="pcap file to write")
    p.add_argument("--truth", help="truth CSV to write")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--packets", type=int, help="about this many packets (whole flows), default mix")
    g.add_argument("--syn-flood", type=int, metavar="N", help="N spoofed SYNs to one server")
    g.add_argument("--port-scan", action="store_true", help="one host SYN-scanning one target")
    p.add_argument(
        "--short-flows", action="store_true", help="with --packets: many short TCP flows"
    )
    p.add_argument("--scan-ports", type=int, default=5000, help="ports probed by --port-scan")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--snaplen", type=int, default=96)
    p.add_argument("--ipv6-frac", type=float, default=0.10)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--chunk-flows", type=int, help="flows per chunk (tests use small ones)")
    return p.parse_args(argv)


def make_mode(a: argparse.Namespace, rng: np.random.Generator) -> Mode:
    """The traffic mode the options ask for."""
    mode: Mode
    if a.syn_flood is not None:
        mode = FloodMode(rng, a.syn_flood)
    elif a.port_scan:
        mode = ScanMode(rng, a.scan_ports)
    else:
        mode = MixMode(rng, a.packets, a.short_flows, a.ipv6_frac)
    if a.chunk_flows:
        mode.chunk_flows = a.chunk_flows
    return mode


def chunks(mode: Mode, rng: np.random.Generator, limit: int | None) -> Iterator[tuple[Chunk, int]]:
    """Chunks with start offsets filled in, cut after ``limit`` packets; yields (chunk, span_us)."""
    sent = 0
    while (c := mode.next_chunk()) is not None:
        counts = np.bincount(c.sk.flow, minlength=len(c.meta.kind))
        if limit is not None:
            keep = int(np.searchsorted(np.cumsum(counts), limit - sent)) + 1
            if keep < len(counts):
                c = Chunk(c.meta.take(slice(0, keep)), _take_flows(c, keep), c.start_us, c.span_us)
                counts = counts[:keep]
        span = c.span_us if c.span_us is not None else max(1, int(counts.sum() / mode.pps * 1e6))
        if c.start_us is None:
            c.start_us = np.sort(rng.integers(0, span, len(counts)))
        yield c, span
        sent += int(counts.sum())
        if limit is not None and sent >= limit:
            return


def _take_flows(c: Chunk, keep: int) -> Skeleton:
    """The skeleton of the first ``keep`` flows of a chunk."""
    sel = c.sk.flow < keep
    return Skeleton(**{k: getattr(c.sk, k)[sel] for k in Skeleton.__annotations__})


def packets(c: Chunk, t0_us: int, fid0: int, rng: np.random.Generator) -> NDArray[np.void]:
    """The chunk's packets as records of PKT, with absolute times and TCP numbers."""
    m, sk = c.meta, c.sk
    f, n, nf = sk.flow, len(sk.flow), len(m.kind)
    assert c.start_us is not None
    first = np.r_[True, f[1:] != f[:-1]] if n else np.zeros(0, bool)
    step = np.where(first, 0, np.maximum(1, np.rint(sk.gap * 1e6))).astype(np.int64)
    t = t0_us + c.start_us[f] + seg_cumsum_excl(step, f) + step
    p = np.zeros(n, PKT)
    p["t"], p["fid"], p["dir"], p["flags"], p["plen"], p["l4hl"] = (
        t,
        fid0 + f,
        sk.dir,
        sk.flags,
        sk.plen,
        sk.l4hl,
    )
    for k in ("proto", "v6", "c_hi", "c_lo", "s_hi", "s_lo", "cport", "sport", "cmac"):
        p[k] = getattr(m, k)[f]
    side = sk.dir.astype(np.int64)
    ttl_s = rng.integers(40, 120, nf)  # servers sit 5-80 hops away
    p["ttl"] = np.where(side == 1, ttl_s[f], m.ttl_c[f])
    _tcp_numbers(p, m, f, side, rng)
    ipid0 = rng.integers(0, 65536, (nf, 2))
    for d in (0, 1):
        mine = (side == d).astype(np.int64)
        sel = side == d
        p["ipid"][sel] = ((ipid0[f, d] + seg_cumsum_excl(mine, f)) & 0xFFFF)[sel]
    return p


def _tcp_numbers(
    p: NDArray[np.void],
    m: FlowMeta,
    f: NDArray[np.int64],
    side: NDArray[np.int64],
    rng: np.random.Generator,
) -> None:
    """Sequence and acknowledgment numbers (SYN and FIN take one number each), windows, TCP timestamps."""
    nf = len(m.kind)
    isn = rng.integers(0, 2**32, (nf, 2))
    isn[m.srv_isn_zero, 1] = 0  # RST answering a SYN: seq 0 (RFC 9293 3.10.7.1)
    flags = p["flags"]
    cons = p["plen"].astype(np.int64) + ((flags & SYN) != 0) + ((flags & FIN) != 0)
    sent = [seg_cumsum_excl(np.where(side == d, cons, 0), f) for d in (0, 1)]
    own = np.where(side == 0, sent[0], sent[1])
    other = np.where(side == 0, sent[1], sent[0])
    syn = (flags & SYN) != 0
    seq = np.where(syn, isn[f, side], isn[f, side] + own)  # a retransmitted SYN repeats the ISN
    ack = np.where((flags & ACK) != 0, isn[f, 1 - side] + other, 0)
    tcp = p["proto"] == 6
    p["seq"] = np.where(tcp, seq & 0xFFFFFFFF, 0)
    p["ack"] = np.where(tcp, ack & 0xFFFFFFFF, 0)
    win = rng.integers(500, 65535, nf)[f]
    win = np.where(syn, np.where(side == 0, m.syn_win[f], LINUX_SYN_WINDOW), win)
    p["win"] = np.where(tcp & ((flags & RST) == 0), win, 0)
    tsoff = rng.integers(0, 2**31, (nf, 2))
    ms = p["t"] // 1000
    p["tsval"] = (ms + tsoff[f, side]) & 0xFFFFFFFF
    p["tsecr"] = np.where((flags & ACK) != 0, (ms - 10 + tsoff[f, 1 - side]) & 0xFFFFFFFF, 0)


def truth_rows(c: Chunk, p: NDArray[np.void]) -> bytes:
    """The chunk's truth CSV rows (side a = the client, which sends each flow's first packet)."""
    m, nf = c.meta, len(c.meta.kind)
    ip_len, wire = lengths(p)
    f = c.sk.flow  # p is still in skeleton order
    cols: list[csvx.Field] = [csvx.integers(m.proto)]
    cols += [csvx.addresses(m.v6, m.c_hi, m.c_lo), csvx.integers(m.cport)]
    cols += [csvx.addresses(m.v6, m.s_hi, m.s_lo), csvx.integers(m.sport)]
    for d in (0, 1):
        sel = p["dir"] == d
        cols.append(csvx.integers(np.bincount(f[sel], minlength=nf)))
        cols.append(csvx.integers(np.bincount(f[sel], wire[sel], minlength=nf).astype(np.int64)))
    cols += [csvx.labels(m.kind, KINDS), csvx.labels(m.state, STATES)]
    for d in (0, 1):
        sel = p["dir"] == d
        cols.append(csvx.integers(np.bincount(f[sel], ip_len[sel], minlength=nf).astype(np.int64)))
    return csvx.lines(cols)


def emit(
    pending: NDArray[np.void], horizon: int, out: BinaryIO, snaplen: int, st: Stats
) -> NDArray[np.void]:
    """Write the pending packets older than ``horizon`` in time order; return the rest."""
    due = pending["t"] < horizon
    ready = pending[due]
    if len(ready):
        ready = ready[np.argsort(ready["t"], kind="stable")]  # stable: a flow's own order stays
        buf = records(ready, snaplen)
        out.write(buf)
        st.bytes += len(buf)
        st.packets += len(ready)
        st.first_us = int(ready["t"][0]) if st.first_us < 0 else st.first_us
        st.last_us = int(ready["t"][-1])
    return pending[~due]


def generate(a: argparse.Namespace) -> Stats:
    """Write the capture (and the truth CSV) that the options ask for."""
    rng = np.random.default_rng(a.seed)
    mode = make_mode(a, rng)
    st = Stats()
    t0 = DEFAULT_START * 1_000_000
    pending = np.zeros(0, PKT)
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(a.out, "wb"))
        truth = stack.enter_context(open(a.truth, "wb")) if a.truth else None
        out.write(file_header(a.snaplen))
        if truth:
            truth.write(TRUTH_HEADER.encode())
        for c, span in chunks(mode, rng, a.packets):
            p = packets(c, t0, st.flows, rng)
            if truth:
                truth.write(truth_rows(c, p))
            st.flows += len(c.meta.kind)
            pending = np.concatenate([pending, p])
            st.peak_pending = max(st.peak_pending, len(pending))
            t0 += span
            pending = emit(pending, t0, out, a.snaplen, st)
        emit(pending, np.iinfo(np.int64).max, out, a.snaplen, st)
    return st


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    a = parse_args(argv)
    if a.short_flows and a.packets is None:
        sys.exit("synth.py: --short-flows goes with --packets")
    start = time.perf_counter()
    st = generate(a)
    if not a.quiet:
        secs = time.perf_counter() - start
        print(
            f"wrote {a.out}: {st.packets} packets, {st.flows} flows, {st.bytes + 24} bytes, "
            f"span {(st.last_us - st.first_us) / 1e6:.1f} s, in {secs:.1f} s "
            f"({st.packets / max(secs, 1e-9) / 1e6:.2f} M packets/s), "
            f"at most {st.peak_pending} packets held",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
