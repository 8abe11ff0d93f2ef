"""TCPSessionAdapter::Process and UpdateStateMachine, compiled (see tcp_endpoint.py).

``is_orig`` below is the packet's role when it arrived, as in Zeek, where the
state machine keeps using that value even after a flip inside the packet;
``orig`` / ``resp`` rows are looked up afresh, as Zeek's members are.
"""

from __future__ import annotations

import numpy as np

from tracker.flows.gaps import on_ack, on_data
from tracker.flows.history import add_history
from tracker.flows.layout import (
    C_FLAGS,
    C_LAST,
    C_ORIG_REASON,
    C_ORIG_SIDE,
    CLOSED,
    E_ACK_SEQ,
    E_ACK_WRAPS,
    E_DID_CLOSE,
    E_FIN_CNT,
    E_FIN_END,
    E_FIN_REL,
    E_LAST_SEQ,
    E_NS,
    E_PREV,
    E_SEQ_WRAPS,
    E_START_SEQ,
    E_STATE,
    E_WIN0_CNT,
    E_WIN0_THR,
    ESTABLISHED,
    F_ACTIVE,
    F_PARTIAL,
    INACTIVE,
    NS_ACK,
    NS_DATA,
    NS_FIN,
    NS_FIN_ACKED,
    NS_FIN_FIRST,
    NS_HS_ACK,
    NS_RST,
    NS_SYN,
    NS_SYNACK,
    O_ATTEMPT,
    O_CLOSE,
    O_LONG_INACT,
    O_SESSION,
    O_TCP_INACT,
    PARTIAL,
    RESET,
    SYN_ACK_SENT,
    SYN_SENT,
    T_ATTEMPT,
    T_DELETE,
    T_EXPIRE,
    TCP_PAYLOAD_CUT,
    WHY_SYN,
)
from tracker.flows.tcp_endpoint import (
    CARET,
    M32,
    TH_ACK,
    TH_FIN,
    TH_RST,
    TH_SYN,
    W_,
    connection_reset,
    init_endpoint,
    is_handshake,
    relative_seq,
    scaled,
    seq_delta,
    update_ack_seq,
    update_history,
    update_last_seq,
)
from tracker.flows.timers import add_timer, cancel_analyzer_timers, set_inactivity
from tracker.jit import kernel, kernel_inline


@kernel
def set_state(conn: np.ndarray, ep: np.ndarray, heap: np.ndarray, g: np.ndarray,
              opt: np.ndarray, slot: int, e: int, p: int, new: int) -> None:
    """TCP_Endpoint::SetState: leaving the handshake switches to the TCP idle timeout."""
    old = ep[e, E_STATE]
    if new == old:
        return
    if not is_handshake(new) and is_handshake(old) and is_handshake(ep[p, E_STATE]):
        set_inactivity(conn, heap, g, slot, opt[O_TCP_INACT])
    ep[e, E_PREV] = old
    ep[e, E_STATE] = new


@kernel
def flip_roles(conn: np.ndarray, hist: np.ndarray, slot: int) -> None:
    """Connection::FlipRoles: swap originator and responder and add '^'."""
    conn[slot, C_ORIG_SIDE] = 1 - conn[slot, C_ORIG_SIDE]
    add_history(conn, hist, slot, CARET)


@kernel
def established(conn: np.ndarray, ep: np.ndarray, heap: np.ndarray,
                g: np.ndarray, opt: np.ndarray, slot: int, long_ports: np.ndarray,
                lsp: np.ndarray, ports: tuple[int, int]) -> None:
    """connection_established in base/protocols/conn/inactivity.zeek: 1 h for some services."""
    oside = conn[slot, C_ORIG_SIDE]
    orig_p, resp_p = (ports[0], ports[1]) if oside == 0 else (ports[1], ports[0])
    service = resp_p
    if ep[2 * slot + oside, E_STATE] == INACTIVE and not lsp[resp_p] and lsp[orig_p]:
        service = orig_p
    if long_ports[service]:
        set_inactivity(conn, heap, g, slot, opt[O_LONG_INACT])


@kernel
def inactive_state(conn: np.ndarray, ep: np.ndarray, hist: np.ndarray, heap: np.ndarray,
                   g: np.ndarray, opt: np.ndarray, slot: int, side: int,
                   is_orig: bool, flags: int, seq: int, length: int, ts: int,
                   long_ports: np.ndarray, lsp: np.ndarray, ports: tuple[int, int]) -> int:
    """UpdateInactiveState; returns 0, or 1 = do_close, 2 = do_close and gen_event."""
    e, p = 2 * slot + side, 2 * slot + 1 - side
    close = 0
    if flags & TH_SYN:
        if is_orig:
            set_state(conn, ep, heap, g, opt, slot, e, p,
                      SYN_ACK_SENT if flags & TH_ACK else SYN_SENT)
            if opt[O_ATTEMPT]:
                add_timer(conn, heap, g, slot, ts + opt[O_ATTEMPT], T_ATTEMPT)
        else:
            if not flags & TH_ACK and ep[p, E_STATE] == SYN_ACK_SENT \
                    and seq == ep[e, E_START_SEQ] & M32:  # SYN/SYN-ACK reversal
                flip_roles(conn, hist, slot)
                conn[slot, C_ORIG_REASON] = WHY_SYN
                set_state(conn, ep, heap, g, opt, slot, p, e, ESTABLISHED)
            if ep[p, E_STATE] == SYN_SENT:
                set_state(conn, ep, heap, g, opt, slot, p, e, ESTABLISHED)
            set_state(conn, ep, heap, g, opt, slot, e, p, ESTABLISHED)
            if ep[p, E_STATE] != PARTIAL:
                established(conn, ep, heap, g, opt, slot, long_ports, lsp, ports)
    if flags & TH_FIN:
        set_state(conn, ep, heap, g, opt, slot, e, p, CLOSED)
        close = 2
    if flags & TH_RST:
        set_state(conn, ep, heap, g, opt, slot, e, p, RESET)
        peer = ep[p, E_STATE]
        reject = peer == ESTABLISHED if is_orig else (peer == SYN_SENT or peer == SYN_ACK_SENT)
        close = 1 if reject else 2
    if ep[e, E_STATE] == INACTIVE:
        orig_state = ep[2 * slot + conn[slot, C_ORIG_SIDE], E_STATE]
        if not is_orig and length == 0 and orig_state == SYN_SENT:
            pass  # an eccentric TCP acking the SYN before its SYN-ACK
        elif flags & TH_ACK and ep[p, E_STATE] == ESTABLISHED:
            set_state(conn, ep, heap, g, opt, slot, e, p, ESTABLISHED)
        else:
            set_state(conn, ep, heap, g, opt, slot, e, p, PARTIAL)
    return close


@kernel
def active_state(conn: np.ndarray, ep: np.ndarray, heap: np.ndarray,
                 g: np.ndarray, opt: np.ndarray, slot: int, side: int, flags: int) -> int:
    """UpdateSYN_SentState, UpdateEstablishedState, UpdateClosedState (see inactive_state)."""
    e, p = 2 * slot + side, 2 * slot + 1 - side
    st = ep[e, E_STATE]
    close = 0
    if st == SYN_SENT or st == SYN_ACK_SENT:
        if flags & TH_FIN:
            set_state(conn, ep, heap, g, opt, slot, e, p, CLOSED)
            close = 2
        if flags & TH_RST:
            set_state(conn, ep, heap, g, opt, slot, e, p, RESET)
            connection_reset(conn, slot)
            close = max(close, 1)
    elif st == ESTABLISHED or st == PARTIAL:
        if flags & TH_SYN and st == PARTIAL and ep[p, E_STATE] == INACTIVE \
                and not flags & TH_ACK:
            set_state(conn, ep, heap, g, opt, slot, e, p, SYN_SENT)
        if flags & TH_FIN and not flags & TH_RST:
            set_state(conn, ep, heap, g, opt, slot, e, p, CLOSED)
            if ep[p, E_STATE] == RESET and ep[p, E_PREV] == CLOSED:
                set_state(conn, ep, heap, g, opt, slot, p, e, CLOSED)  # FIN then RST
            close = 2
        if flags & TH_RST:
            set_state(conn, ep, heap, g, opt, slot, e, p, RESET)
            close = max(close, 1)
            if ep[p, E_STATE] != RESET or ep[p, E_PREV] != ESTABLISHED:
                connection_reset(conn, slot)
    elif st == CLOSED and flags & TH_RST and ep[p, E_STATE] != CLOSED:
        set_state(conn, ep, heap, g, opt, slot, e, p, RESET)
        if not ep[e, E_DID_CLOSE]:
            close = 1  # a RST after a FIN
    return close


@kernel
def connection_closed(conn: np.ndarray, ep: np.ndarray, heap: np.ndarray,
                      g: np.ndarray, opt: np.ndarray, slot: int, side: int,
                      gen_event: bool) -> None:
    """TCPSessionAdapter::ConnectionClosed: arm the delete or expire timer."""
    e, p = 2 * slot + side, 2 * slot + 1 - side
    if ep[e, E_DID_CLOSE]:
        return
    ep[e, E_DID_CLOSE] = 1
    if ep[e, E_STATE] == RESET or ep[p, E_DID_CLOSE] or ep[p, E_STATE] == INACTIVE:
        if gen_event and (ep[e, E_PREV] != INACTIVE or ep[p, E_STATE] != INACTIVE):
            conn[slot, C_FLAGS] &= ~F_ACTIVE  # ConnectionFinished
        cancel_analyzer_timers(conn, slot)
        add_timer(conn, heap, g, slot, conn[slot, C_LAST] + opt[O_CLOSE], T_DELETE)
    elif ep[e, E_PREV] != INACTIVE:
        add_timer(conn, heap, g, slot, conn[slot, C_LAST] + opt[O_SESSION], T_EXPIRE)


@kernel_inline
def netstat_evidence(ep: np.ndarray, slot: int, side: int, flags: int, seq1: int, ack: int,
                     length: int) -> None:
    """Record what this packet shows about both hosts' sockets (netstat.py reads it)."""
    e, p = 2 * slot + side, 2 * slot + 1 - side
    ns, pns = ep[e, E_NS], ep[p, E_NS]
    if flags & TH_SYN:
        ns |= NS_SYNACK if flags & TH_ACK else NS_SYN
    elif flags & TH_ACK:
        ns |= NS_ACK
        if pns & NS_SYNACK:
            ns |= NS_HS_ACK
    if flags & TH_FIN:
        if ns & NS_FIN == 0 and pns & NS_FIN == 0:
            ns |= NS_FIN_FIRST
        ns |= NS_FIN
        ep[e, E_FIN_END] = seq1
    if flags & TH_RST:
        ns |= NS_RST
    if length > 0:
        ns |= NS_DATA
    if flags & TH_ACK and pns & NS_FIN and seq_delta(ack, ep[p, E_FIN_END]) >= 0:
        pns |= NS_FIN_ACKED
    ep[e, E_NS], ep[p, E_NS] = ns, pns


@kernel_inline
def tcp_process(conn: np.ndarray, ep: np.ndarray, hist: np.ndarray, heap: np.ndarray, g: np.ndarray, opt: np.ndarray, slot: int, side: int,
                flags: int, seq: int, ack: int, win: int, length: int, ts: int,
                long_ports: np.ndarray, lsp: np.ndarray, ports: tuple[int, int]) -> None:
    """TCPSessionAdapter::Process for one packet with a good checksum."""
    e, p = 2 * slot + side, 2 * slot + 1 - side
    is_orig = side == conn[slot, C_ORIG_SIDE]
    syn, fin, rst = flags & TH_SYN != 0, flags & TH_FIN != 0, flags & TH_RST != 0
    seg_len = length + int(syn) + int(fin) - (length if rst else 0)
    seq1 = (seq + seg_len) & M32
    init_endpoint(ep, e, syn, seq, seq1)
    rel_seq, seq_under = relative_seq(ep, e, seq, ep[e, E_LAST_SEQ], ep[e, E_SEQ_WRAPS])
    update_history(conn, ep, hist, slot, side, flags, rel_seq, length)
    if win == 0 and not rst and ep[p, E_STATE] != CLOSED and ep[e, E_STATE] != RESET:
        scaled(conn, ep, hist, slot, side, E_WIN0_CNT, E_WIN0_THR, W_)
    if not (ep[e, E_DID_CLOSE] and ep[p, E_DID_CLOSE]):
        conn[slot, C_LAST] = ts
    if fin:
        ep[e, E_FIN_CNT] += 1
        ep[e, E_FIN_REL] = rel_seq + seg_len  # one past the FIN octet (Zeek's FIN_seq)
    rel_ack = 0
    if flags & TH_ACK:
        if ep[p, E_STATE] == INACTIVE:  # init_peer: number the peer as if its SYN was seen
            ep[p, E_START_SEQ] = (ack - 1) & M32
            ep[p, E_ACK_SEQ] = (ack - 1) & M32
            ep[p, E_LAST_SEQ] = (ack - 1) & M32
            rel_ack = 1
        else:
            rel_ack, under = relative_seq(ep, p, ack, ep[p, E_ACK_SEQ], ep[p, E_ACK_WRAPS])
            if under:
                rel_ack = 0
            elif not rst:
                update_ack_seq(ep, p, ack)
    update_last_seq(conn, ep, hist, slot, side, seq1, flags, length)
    if ep[e, E_STATE] == INACTIVE:
        close = inactive_state(conn, ep, hist, heap, g, opt, slot, side, is_orig, flags, seq,
                               length, ts, long_ports, lsp, ports)
    elif flags & (TH_SYN | TH_FIN | TH_RST):  # other packets change no established state
        close = active_state(conn, ep, heap, g, opt, slot, side, flags)
    else:
        close = 0
    # After the state machine, as Zeek: an ACK may reveal a gap in the peer's data
    # (TCPSessionAdapter.cc L608-615), then this packet's own data is reassembled
    # when its payload was captured whole (L635-641).
    if flags & TH_ACK:
        on_ack(conn, ep, hist, slot, 1 - side, rel_ack, conn[slot, C_FLAGS] & F_PARTIAL != 0)
    if length > 0 and not rst and not seq_under and not flags & TCP_PAYLOAD_CUT:
        on_data(ep, slot, side, rel_seq + int(syn), length)
    netstat_evidence(ep, slot, side, flags, seq1, ack, length)
    if close:
        connection_closed(conn, ep, heap, g, opt, slot, side, close == 2)
