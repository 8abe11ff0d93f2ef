"""Zeek's TCP endpoint state machine, compiled, one packet at a time.

A faithful re-implementation of what ``TCPSessionAdapter::Process`` and its
helpers do to the two endpoints (zeek/zeek ``src/packet_analysis/protocol/tcp/
TCPSessionAdapter.cc`` and ``src/analyzer/protocol/tcp/TCP_Endpoint.{h,cc}``):
sequence bookkeeping (so that ``Size()`` gives Zeek's orig_bytes/resp_bytes),
the history letters, the endpoint states behind conn_state, and the timers it
arms. Only what changes conn.log is kept (no events, weirds or reassembly).
Sequence numbers are held in int64 as uint32 values.
"""

from __future__ import annotations

import numpy as np

from tracker.flows.history import (
    HIST_TCP_RESP_SHIFT,
    add_history,
    check_history,
    lower,
    scaled_entry,
)
from tracker.flows.layout import (
    C_FLAGS,
    C_HIST_LEN,
    C_ORIG_REASON,
    C_ORIG_SIDE,
    E_ACK_SEQ,
    E_ACK_WRAPS,
    E_H_FIN,
    E_H_RST,
    E_H_SYN,
    E_LAST_SEQ,
    E_PREV,
    E_RXMT_CNT,
    E_RXMT_THR,
    E_SEQ_WRAPS,
    E_START_SEQ,
    E_STATE,
    ESTABLISHED,
    F_ACTIVE,
    INACTIVE,
    PARTIAL,
    RESET,
    SYN_ACK_SENT,
    SYN_SENT,
    WHY_SYNACK,
)
from tracker.jit import kernel, kernel_inline

M32 = 0xFFFFFFFF
TOO_LARGE_SEQ_DELTA = 1048576  # TCP.cc / TCPSessionAdapter.cc
TH_FIN, TH_SYN, TH_RST, TH_ACK = 0x01, 0x02, 0x04, 0x10  # RFC 9293 3.1
# TCP_Endpoint.h history masks
HIST_SYN_PKT, HIST_FIN_PKT, HIST_RST_PKT, HIST_FIN_RST_PKT = 0x1, 0x2, 0x4, 0x8
HIST_DATA_PKT, HIST_ACK_PKT, HIST_MULTI_FLAG_PKT = 0x10, 0x20, 0x40
A_, D_, F_, H_, I_, Q_, R_, S_ = 65, 68, 70, 72, 73, 81, 82, 83  # ASCII letters
C_, T_, W_, CARET, h_ = 67, 84, 87, 94, 104


@kernel_inline
def seq_delta(a: int, b: int) -> int:
    """int32(a - b) for uint32 sequence numbers (Zeek's seq_delta)."""
    d = (a - b) & M32
    return d - 0x100000000 if d >= 0x80000000 else d


@kernel_inline
def is_handshake(state: int) -> bool:
    return state == INACTIVE or state == SYN_SENT or state == SYN_ACK_SENT


@kernel_inline
def relative_seq(ep: np.ndarray, e: int, cur: int, last: int, wraps: int) -> tuple[int, bool]:
    """get_relative_seq: (cur relative to e's ISN in 64-bit space, underflow)."""
    delta = seq_delta(cur, last)
    if delta < 0 and wraps and cur > last:
        wraps -= 1  # part of a previous 32-bit sequence space
    elif delta > 0 and cur < last:
        wraps += 1  # the sequence space wrapped around
    if wraps == 0:
        d = seq_delta(cur, ep[e, E_START_SEQ] & M32)
        return d, d < 0
    return (wraps << 32) + cur - ep[e, E_START_SEQ], False


@kernel_inline
def init_endpoint(ep: np.ndarray, e: int, syn: bool, seq: int, seq1: int) -> None:
    """init_endpoint: set the ISN bookkeeping from this endpoint's packet."""
    st = ep[e, E_STATE]
    if st == INACTIVE:
        if syn:
            ep[e, E_ACK_SEQ] = seq
            ep[e, E_START_SEQ] = seq
            ep[e, E_LAST_SEQ] = seq1
        else:  # partial connection: as though a SYN had been seen
            ep[e, E_ACK_SEQ] = (seq - 1) & M32
            ep[e, E_START_SEQ] = (seq - 1) & M32
            ep[e, E_LAST_SEQ] = seq
    elif syn and (st == SYN_SENT or st == SYN_ACK_SENT or st == ESTABLISHED
                  or st == PARTIAL or (st == RESET and ep[e, E_PREV] == INACTIVE)):
        if (st == SYN_SENT or st == SYN_ACK_SENT) and seq == ep[e, E_START_SEQ] & M32:
            return
        ep[e, E_START_SEQ] = seq
        ep[e, E_ACK_SEQ] = seq
        ep[e, E_LAST_SEQ] = seq1


@kernel_inline
def tcp_check_history(conn: np.ndarray, hist: np.ndarray, slot: int, side: int,
                      mask: int, code: int) -> bool:
    """TCP_Endpoint::CheckHistory, with the late flip of a flow that began with a SYN-ACK.

    Zeek's TCP_Endpoint.cc L220-243: when the history is exactly
    "H" and this packet's letter is A or D (either side), the roles flip and the
    history becomes "^h"; the letter is then recorded with the new roles.
    """
    if (code == A_ or code == D_) and conn[slot, C_HIST_LEN] == 1 and hist[slot, 0] == H_:
        conn[slot, C_ORIG_SIDE] = 1 - conn[slot, C_ORIG_SIDE]
        conn[slot, C_ORIG_REASON] = WHY_SYNACK
        hist[slot, 0] = CARET
        hist[slot, 1] = h_
        conn[slot, C_HIST_LEN] = 2
    if side != conn[slot, C_ORIG_SIDE]:
        mask <<= HIST_TCP_RESP_SHIFT
        code = lower(code)
    return check_history(conn, hist, slot, mask, code)


@kernel_inline
def _letter(conn: np.ndarray, slot: int, side: int, code: int) -> int:
    return code if side == conn[slot, C_ORIG_SIDE] else lower(code)


@kernel_inline
def update_history(conn: np.ndarray, ep: np.ndarray, hist: np.ndarray, slot: int, side: int,
                   flags: int, rel_seq: int, length: int) -> None:
    """update_history: the S H A D F R I Q letters of one packet."""
    e = 2 * slot + side
    syn, fin, rst = flags & TH_SYN != 0, flags & TH_FIN != 0, flags & TH_RST != 0
    nbits = int(syn) + int(fin) + int(rst)
    if nbits > 1:
        if fin and rst:
            tcp_check_history(conn, hist, slot, side, HIST_FIN_RST_PKT, I_)
        else:
            tcp_check_history(conn, hist, slot, side, HIST_MULTI_FLAG_PKT, Q_)
    elif syn:
        code = H_ if flags & TH_ACK else S_
        if tcp_check_history(conn, hist, slot, side, HIST_SYN_PKT, code) \
                and rel_seq != ep[e, E_H_SYN]:
            add_history(conn, hist, slot, _letter(conn, slot, side, code))
        ep[e, E_H_SYN] = rel_seq
    elif fin:
        if tcp_check_history(conn, hist, slot, side, HIST_FIN_PKT, F_) \
                and rel_seq + length != ep[e, E_H_FIN]:
            add_history(conn, hist, slot, _letter(conn, slot, side, F_))
        ep[e, E_H_FIN] = rel_seq + length
    elif rst:
        if tcp_check_history(conn, hist, slot, side, HIST_RST_PKT, R_) \
                and rel_seq != ep[e, E_H_RST]:
            add_history(conn, hist, slot, _letter(conn, slot, side, R_))
        ep[e, E_H_RST] = rel_seq
    elif length:
        tcp_check_history(conn, hist, slot, side, HIST_DATA_PKT, D_)
    elif flags & TH_ACK:
        tcp_check_history(conn, hist, slot, side, HIST_ACK_PKT, A_)


@kernel
def scaled(conn: np.ndarray, ep: np.ndarray, hist: np.ndarray, slot: int, side: int,
           cnt_col: int, thr_col: int, code: int) -> None:
    """ChecksumError / DidRxmit / ZeroWindow: the scaled C, T, W letters."""
    scaled_entry(conn, hist, slot, ep, 2 * slot + side, cnt_col, thr_col,
                 _letter(conn, slot, side, code))


@kernel_inline
def update_ack_seq(ep: np.ndarray, p: int, ack: int) -> None:
    """update_ack_seq + UpdateAckSeq: the highest ack the peer got for its data."""
    delta = seq_delta(ack, ep[p, E_ACK_SEQ])
    if ack == 0 and delta > TOO_LARGE_SEQ_DELTA:
        return  # more likely a broken ack than a connection landing on 0
    if delta > 0:
        if ack < ep[p, E_ACK_SEQ]:
            ep[p, E_ACK_WRAPS] += 1
        ep[p, E_ACK_SEQ] = ack


@kernel_inline
def update_last_seq(conn: np.ndarray, ep: np.ndarray, hist: np.ndarray, slot: int, side: int,
                    seq1: int, flags: int, length: int) -> int:
    """update_last_seq: advance the endpoint's last sequence number or note a retransmission."""
    e = 2 * slot + side
    last = ep[e, E_LAST_SEQ]
    delta = seq_delta(seq1, last)
    advance = False
    if flags & (TH_SYN | TH_RST) and (delta > TOO_LARGE_SEQ_DELTA or
                                      delta < -TOO_LARGE_SEQ_DELTA):
        pass
    elif flags & TH_FIN and last == (ep[e, E_START_SEQ] + 1) & M32:
        advance = True  # > 2 GB connections seen only by SYN and FIN
    elif ep[e, E_STATE] == RESET:
        pass  # no sequence number is trusted after a RST
    elif delta > 0:
        advance = True
    elif length > 0:
        scaled(conn, ep, hist, slot, side, E_RXMT_CNT, E_RXMT_THR, T_)
    if advance:
        if seq1 < last:
            ep[e, E_SEQ_WRAPS] += 1
        ep[e, E_LAST_SEQ] = seq1
    return delta


@kernel
def connection_reset(conn: np.ndarray, slot: int) -> None:
    """TCPSessionAdapter::ConnectionReset: the adapter becomes inactive."""
    conn[slot, C_FLAGS] &= ~F_ACTIVE
