"""Content gaps as Zeek finds them: the G/g history letters and missed_bytes (ZEEK-FACTS 8).

Zeek reassembles every TCP connection's data (TCP_Reassembler). Each side's
reassembler delivers data in order from ``last_reassem_seq`` (relative sequence
numbers, the first byte after the SYN is 1) and buffers what arrives above a
hole. Only an ACK declares a gap: when the peer acknowledges past
``last_reassem_seq``, every hole up to the ACK not covered by buffered data is
missing content (``TCP_Reassembler::Undelivered`` and ``Gap``). This module
keeps that state per endpoint in the ``ep`` columns E_REASM..E_BLK, with at
most MAX_BLOCKS blocks above holes (more are merged, an approximation for
captures that lose more than three segments in one window).
"""

from __future__ import annotations

import numpy as np

from tracker.flows.layout import (
    C_MISSED,
    CLOSED,
    E_ACK_SEQ,
    E_BLK,
    E_FIN_CNT,
    E_FIN_REL,
    E_GAP_CNT,
    E_GAP_THR,
    E_NBLK,
    E_PREV,
    E_REASM,
    E_SKIP,
    E_START_SEQ,
    E_STATE,
    ESTABLISHED,
    MAX_BLOCKS,
)
from tracker.flows.tcp_endpoint import M32, scaled
from tracker.jit import kernel_inline

G_ = 71  # 'G'
# init-bare.zeek L1846 and L1855: skip a side's gaps when this much data waits above a hole.
ABOVE_HOLE_WITHOUT_ACKS = 16384
EXCESSIVE_WITHOUT_ACKS = 10 * 1024 * 1024


@kernel_inline
def _clean(ep: np.ndarray, e: int) -> bool:
    """A 'clean' endpoint: established, or closed from established (TCP_Reassembler.cc
    L103-110)."""
    st = ep[e, E_STATE]
    return st == ESTABLISHED or (st == CLOSED and ep[e, E_PREV] == ESTABLISHED)


@kernel_inline
def _gap(conn: np.ndarray, ep: np.ndarray, hist: np.ndarray, slot: int, side: int,
         length: int) -> None:
    """TCP_Reassembler::Gap: with both endpoints clean, the scaled G (g for the
    responder's data) and missed_bytes (report_gaps_for_partial = F)."""
    if length <= 0 or not (_clean(ep, 2 * slot) and _clean(ep, 2 * slot + 1)):
        return
    scaled(conn, ep, hist, slot, side, E_GAP_CNT, E_GAP_THR, G_)
    conn[slot, C_MISSED] += length


@kernel_inline
def _remove(ep: np.ndarray, e: int, j: int) -> None:
    n = ep[e, E_NBLK] - 1
    ep[e, E_BLK + 2 * j], ep[e, E_BLK + 2 * j + 1] = ep[e, E_BLK + 2 * n], ep[e, E_BLK + 2 * n + 1]
    ep[e, E_NBLK] = n


@kernel_inline
def _lowest(ep: np.ndarray, e: int) -> int:
    """The buffered block with the lowest start, -1 if none."""
    best = -1
    for j in range(ep[e, E_NBLK]):
        if best < 0 or ep[e, E_BLK + 2 * j] < ep[e, E_BLK + 2 * best]:
            best = j
    return best


@kernel_inline
def ack_received(conn: np.ndarray, ep: np.ndarray, hist: np.ndarray, slot: int, side: int,
                 rel_ack: int, partial: bool) -> None:
    """TCP_Reassembler::AckReceived for ``side``'s data (its peer sent the ACK)."""
    e = 2 * slot + side
    if ep[e, E_FIN_CNT] > 0 and rel_ack >= ep[e, E_FIN_REL]:
        rel_ack = ep[e, E_FIN_REL] - 1  # the FIN octet is no content
    reasm = ep[e, E_REASM]
    if rel_ack <= reasm:
        return
    # A keep-alive acking 1 or 2 on a connection seen without its SYN (L142-154).
    report = not ep[e, E_SKIP] and not (rel_ack <= 2 and partial)
    while True:  # buffered blocks below the ACK, lowest first: holes before them are gaps
        j = _lowest(ep, e)
        if j < 0 or ep[e, E_BLK + 2 * j] >= rel_ack:
            break
        if report and ep[e, E_BLK + 2 * j] > reasm:
            _gap(conn, ep, hist, slot, side, ep[e, E_BLK + 2 * j] - reasm)
        reasm = max(reasm, ep[e, E_BLK + 2 * j + 1])
        _remove(ep, e, j)
    if reasm < rel_ack:
        if report:
            _gap(conn, ep, hist, slot, side, rel_ack - reasm)
        reasm = rel_ack
    ep[e, E_REASM] = reasm
    _deliver(ep, e)


@kernel_inline
def _deliver(ep: np.ndarray, e: int) -> None:
    """Deliver the buffered blocks that now continue the in-order data."""
    moved = True
    while moved:
        moved = False
        for j in range(ep[e, E_NBLK]):
            if ep[e, E_BLK + 2 * j] <= ep[e, E_REASM]:
                ep[e, E_REASM] = max(ep[e, E_REASM], ep[e, E_BLK + 2 * j + 1])
                _remove(ep, e, j)
                moved = True
                break


@kernel_inline
def _buffer(ep: np.ndarray, e: int, lo: int, hi: int) -> None:
    """Keep [lo, hi) above the hole, merged with the blocks it touches; with more than
    MAX_BLOCKS, the two nearest blocks become one (the bytes between count as held)."""
    j = 0
    while j < ep[e, E_NBLK]:
        b_lo, b_hi = ep[e, E_BLK + 2 * j], ep[e, E_BLK + 2 * j + 1]
        if b_lo <= hi and lo <= b_hi:
            lo, hi = min(lo, b_lo), max(hi, b_hi)
            _remove(ep, e, j)
        else:
            j += 1
    n = ep[e, E_NBLK]
    if n == MAX_BLOCKS:  # merge the new block into its nearest neighbour
        best, dist = 0, -1
        for k in range(n):
            d = max(ep[e, E_BLK + 2 * k] - hi, lo - ep[e, E_BLK + 2 * k + 1])
            if dist < 0 or d < dist:
                best, dist = k, d
        lo, hi = min(lo, ep[e, E_BLK + 2 * best]), max(hi, ep[e, E_BLK + 2 * best + 1])
        _remove(ep, e, best)
        n -= 1
    ep[e, E_BLK + 2 * n], ep[e, E_BLK + 2 * n + 1] = lo, hi
    ep[e, E_NBLK] = n + 1


@kernel_inline
def data_sent(ep: np.ndarray, slot: int, side: int, rel_seq: int, length: int) -> None:
    """TCP_Reassembler::DataSent of a whole captured payload at relative ``rel_seq``."""
    e = 2 * slot + side
    if ep[e, E_SKIP]:
        return
    lo, hi = max(rel_seq, ep[e, E_REASM]), rel_seq + length  # acked or delivered: old
    if hi <= lo:
        return
    if lo == ep[e, E_REASM]:
        ep[e, E_REASM] = hi
        _deliver(ep, e)
        return
    _buffer(ep, e, lo, hi)
    held = 0
    for j in range(ep[e, E_NBLK]):
        held += ep[e, E_BLK + 2 * j + 1] - ep[e, E_BLK + 2 * j]
    no_data_acked = ((ep[e, E_ACK_SEQ] - ep[e, E_START_SEQ]) & M32) <= 1
    if (no_data_acked and held > ABOVE_HOLE_WITHOUT_ACKS) or held > EXCESSIVE_WITHOUT_ACKS:
        ep[e, E_NBLK] = 0
        ep[e, E_SKIP] = 1



@kernel_inline
def on_ack(conn: np.ndarray, ep: np.ndarray, hist: np.ndarray, slot: int, side: int,
           rel_ack: int, partial: bool) -> None:
    """ack_received, called only when the ACK passes the in-order data (the FIN clip only
    lowers it): most ACKs of a capture do not, and this runs for every TCP packet."""
    if rel_ack > ep[2 * slot + side, E_REASM]:
        ack_received(conn, ep, hist, slot, side, rel_ack, partial)


@kernel_inline
def on_data(ep: np.ndarray, slot: int, side: int, rel_seq: int, length: int) -> None:
    """data_sent, with the common case inline: data continuing the in-order data with
    nothing buffered above a hole."""
    e = 2 * slot + side
    if ep[e, E_NBLK] == 0 and rel_seq <= ep[e, E_REASM] < rel_seq + length:
        ep[e, E_REASM] = rel_seq + length
    else:
        data_sent(ep, slot, side, rel_seq, length)
