"""Compiled flow life cycle: Zeek's timers, removal, LRU order.

Zeek's timer rules (``RunState.cc`` L220-258, docs/flow-record.md section 5): before a
packet is processed, network time becomes max(network time, packet time) and
every timer due at or before it fires, in time order, each seeing ``t`` =
network time. The four timers that matter by default:

- inactivity (``Session.cc`` L91-183): due at last_time + timeout; removes the
  flow if ``last_time + timeout <= t``, else re-arms at that time;
- TCP attempt (``TCPSessionAdapter.cc`` L1068-1081): one shot, t_SYN + 5 s;
  removes a flow whose originator is SYN_SENT / SYN_ACK_SENT and whose
  responder is INACTIVE;
- TCP expire (L1099-1145): checks, then re-arms at t + tcp_session_timer;
- TCP conn-delete (L1256-1261): last_time + close delay; removes;
- DNS expire (``DNS.cc`` L2356, L2386-2397), on a UDP flow whose responder port has
  the DNS analyzer: first at creation + dns_session_timeout; removes the flow if
  ``t - last_time >= dns_session_timeout - 1 s``, else re-arms at t + the timeout.

A flow keeps its pending timers in its own columns and has a single wake-up
entry in the heap, at (or before) its earliest due time; when that comes out,
the flow's due timers run in time order and a new wake-up is pushed. Timers of
one flow thus run exactly as Zeek's; only the order in which different flows
end within one packet's timer run may differ, which changes no state.
Inactivity is lazy: its due time is last_time + timeout, read when needed.
"""

from __future__ import annotations

import numpy as np

from tracker.flows.layout import (
    C_ATTEMPT_T,
    C_DELETE_T,
    C_END_REASON,
    C_END_ROW,
    C_END_TS,
    C_EXPIRE,
    C_FIRED_T,
    C_FLAGS,
    C_FLOW_ID,
    C_INACT_TO,
    C_LAST,
    C_LRU_NEXT,
    C_LRU_PREV,
    C_ORIG_SIDE,
    C_PROTO,
    C_WAKE_SEQ,
    C_WAKE_T,
    E_DID_CLOSE,
    E_STATE,
    END_FIN,
    END_IDLE,
    END_RST,
    F_ACTIVE,
    F_ATTEMPT,
    F_OPEN,
    G_ENDED_N,
    G_HEAP_N,
    G_LRU_HEAD,
    G_LRU_TAIL,
    G_NT,
    G_OPEN,
    G_ROW,
    INACTIVE,
    N_EXPIRE,
    O_CAP,
    O_DNS_SESSION,
    O_LINGER,
    O_SESSION,
    RESET,
    SYN_ACK_SENT,
    SYN_SENT,
    T_ATTEMPT,
    T_DELETE,
    T_EXPIRE,
    T_INACT,
)
from tracker.flows.store import heap_pop, heap_push, ht_delete
from tracker.frames import NS_PER_S
from tracker.jit import kernel
from tracker.packets import PROTO_UDP

NEVER = np.iinfo(np.int64).max


@kernel
def wake_by(conn: np.ndarray, heap: np.ndarray, g: np.ndarray, slot: int, due: int) -> None:
    """Make sure the flow wakes up at or before ``due`` (a new entry only if earlier)."""
    if conn[slot, C_WAKE_SEQ] < 0 or due < conn[slot, C_WAKE_T]:
        conn[slot, C_WAKE_SEQ] = heap_push(heap, g, due, slot, conn[slot, C_FLOW_ID])
        conn[slot, C_WAKE_T] = due


@kernel
def set_inactivity(conn: np.ndarray, heap: np.ndarray, g: np.ndarray, slot: int,
                   timeout: int) -> None:
    """Session::SetInactivityTimeout: no-op if unchanged, else due at last_time + timeout."""
    if timeout == conn[slot, C_INACT_TO]:
        return
    conn[slot, C_INACT_TO] = timeout
    if timeout > 0:
        wake_by(conn, heap, g, slot, conn[slot, C_LAST] + timeout)


@kernel
def add_timer(conn: np.ndarray, heap: np.ndarray, g: np.ndarray, slot: int, t: int,
              kind: int) -> None:
    """Arm a TCP attempt, expire or delete timer due at ``t``."""
    if kind == T_ATTEMPT:
        conn[slot, C_ATTEMPT_T] = t
        conn[slot, C_FLAGS] |= F_ATTEMPT
    elif kind == T_DELETE:
        conn[slot, C_DELETE_T] = t
    else:  # expire checks at the same time are one check: keep distinct times only
        free = -1
        for k in range(N_EXPIRE):
            due = conn[slot, C_EXPIRE + k]
            if due == t:
                return
            if due < 0 and free < 0:
                free = k
        conn[slot, C_EXPIRE + max(free, 0)] = t
    wake_by(conn, heap, g, slot, t)


@kernel
def cancel_analyzer_timers(conn: np.ndarray, slot: int) -> None:
    """TCPSessionAdapter::CancelTimers: attempt, expire and delete timers go."""
    conn[slot, C_FLAGS] &= ~F_ATTEMPT
    conn[slot, C_DELETE_T] = -1
    for k in range(N_EXPIRE):
        conn[slot, C_EXPIRE + k] = -1


@kernel
def lru_unlink(conn: np.ndarray, g: np.ndarray, slot: int) -> None:
    prev, nxt = conn[slot, C_LRU_PREV], conn[slot, C_LRU_NEXT]
    if prev >= 0:
        conn[prev, C_LRU_NEXT] = nxt
    else:
        g[G_LRU_HEAD] = nxt
    if nxt >= 0:
        conn[nxt, C_LRU_PREV] = prev
    else:
        g[G_LRU_TAIL] = prev


@kernel
def lru_append(conn: np.ndarray, g: np.ndarray, slot: int) -> None:
    tail = g[G_LRU_TAIL]
    conn[slot, C_LRU_PREV] = tail
    conn[slot, C_LRU_NEXT] = -1
    if tail >= 0:
        conn[tail, C_LRU_NEXT] = slot
    else:
        g[G_LRU_HEAD] = slot
    g[G_LRU_TAIL] = slot


@kernel
def remove_flow(conn: np.ndarray, keys: np.ndarray, table: np.ndarray, ended: np.ndarray,
                g: np.ndarray, opt: np.ndarray, slot: int, reason: int) -> None:
    """session_mgr->Remove: the flow ends now; its slot waits in ``ended`` for Python."""
    conn[slot, C_END_REASON] = reason
    conn[slot, C_END_TS] = g[G_NT]
    conn[slot, C_END_ROW] = g[G_ROW]
    conn[slot, C_FIRED_T] = -1
    conn[slot, C_FLAGS] &= ~F_OPEN
    conn[slot, C_WAKE_SEQ] = -1  # its heap entries are now stale
    ht_delete(table, keys, slot, g)
    if opt[O_CAP] >= 0:
        lru_unlink(conn, g, slot)
    ended[g[G_ENDED_N]] = slot
    g[G_ENDED_N] += 1
    g[G_OPEN] -= 1


@kernel
def _states(conn: np.ndarray, ep: np.ndarray, slot: int) -> tuple[int, int, int, int]:
    """(orig state, resp state, orig did_close, resp did_close)."""
    o = 2 * slot + conn[slot, C_ORIG_SIDE]
    r = 2 * slot + 1 - conn[slot, C_ORIG_SIDE]
    return ep[o, E_STATE], ep[r, E_STATE], ep[o, E_DID_CLOSE], ep[r, E_DID_CLOSE]


@kernel
def _expire_check(conn: np.ndarray, ep: np.ndarray, slot: int, t: int, linger: int) -> int:
    """TCPSessionAdapter::ExpireTimer's decision: an end reason, or -1 to re-arm."""
    os_, rs, odc, rdc = _states(conn, ep, slot)
    if conn[slot, C_LAST] + linger < t:
        if odc or rdc:
            reset = os_ == RESET or rs == RESET
            if (odc and rdc) or reset or os_ == INACTIVE or rs == INACTIVE:
                return END_RST if reset else END_FIN
        if rs == INACTIVE and os_ == INACTIVE:
            return END_IDLE
    return -1


@kernel
def next_timer(conn: np.ndarray, slot: int) -> tuple[int, int, int]:
    """(due time, kind, expire index) of the flow's earliest pending timer; NEVER if none.

    Ties go in the order Zeek armed them: expire (at creation), attempt, delete,
    inactivity.
    """
    best, kind, idx = NEVER, -1, -1
    for k in range(N_EXPIRE):
        due = conn[slot, C_EXPIRE + k]
        if 0 <= due < best:
            best, kind, idx = due, T_EXPIRE, k
    if conn[slot, C_FLAGS] & F_ATTEMPT and conn[slot, C_ATTEMPT_T] < best:
        best, kind = conn[slot, C_ATTEMPT_T], T_ATTEMPT
    if 0 <= conn[slot, C_DELETE_T] < best:
        best, kind = conn[slot, C_DELETE_T], T_DELETE
    if conn[slot, C_INACT_TO] > 0 and conn[slot, C_LAST] + conn[slot, C_INACT_TO] < best:
        best, kind = conn[slot, C_LAST] + conn[slot, C_INACT_TO], T_INACT
    return best, kind, idx


@kernel
def _dns_expire(conn: np.ndarray, opt: np.ndarray, slot: int, idx: int, t: int) -> int:
    """DNS_Analyzer::ExpireTimer: END_IDLE once the flow was quiet for the timeout less
    the second Zeek allows for a request and its reply, else the next check."""
    period = opt[O_DNS_SESSION]
    if t - conn[slot, C_LAST] >= period - NS_PER_S:
        return END_IDLE
    conn[slot, C_EXPIRE + idx] = t + period if t <= NEVER - period else NEVER
    return -1


@kernel
def _run_one(conn: np.ndarray, ep: np.ndarray, opt: np.ndarray, slot: int, kind: int,
             idx: int, t: int) -> int:
    """Run one due timer at network time t: an end reason, or -1 to keep the flow."""
    if kind == T_INACT:
        return END_IDLE  # due means last_time + timeout <= t
    if kind == T_DELETE:
        os_, rs, _, _ = _states(conn, ep, slot)
        return END_RST if os_ == RESET or rs == RESET else END_FIN
    if kind == T_ATTEMPT:
        conn[slot, C_FLAGS] &= ~F_ATTEMPT
        os_, rs, _, _ = _states(conn, ep, slot)
        if conn[slot, C_FLAGS] & F_ACTIVE and (os_ == SYN_SENT or os_ == SYN_ACK_SENT) \
                and rs == INACTIVE:
            conn[slot, C_FLAGS] &= ~F_ACTIVE
            return END_IDLE
        return -1
    conn[slot, C_EXPIRE + idx] = -1
    if conn[slot, C_PROTO] == PROTO_UDP:
        return _dns_expire(conn, opt, slot, idx, t)
    if conn[slot, C_FLAGS] & F_ACTIVE == 0:
        return -1  # an inactive adapter's expire timer neither acts nor re-arms
    reason = _expire_check(conn, ep, slot, t, opt[O_LINGER])
    if reason < 0:
        # Re-arm later than now (FlowOptions keeps the period > 0), unless time is at its
        # int64 end: then there is no later, and the check ends.
        conn[slot, C_EXPIRE + idx] = t + opt[O_SESSION] if t <= NEVER - opt[O_SESSION] \
            else NEVER
    return reason


@kernel
def _wake(conn: np.ndarray, ep: np.ndarray, heap: np.ndarray, g: np.ndarray, opt: np.ndarray,
          slot: int, t: int) -> int:
    """Run the flow's timers due by t, in time order; an end reason or -1."""
    while True:
        due, kind, idx = next_timer(conn, slot)
        if kind < 0:  # no timer pending (also when t itself is NEVER: 2**63-1 ns)
            return -1
        if due > t:
            wake_by(conn, heap, g, slot, due)
            return -1
        reason = _run_one(conn, ep, opt, slot, kind, idx, t)
        if reason >= 0:
            return reason


@kernel
def fire_timers(conn: np.ndarray, ep: np.ndarray, keys: np.ndarray, table: np.ndarray,
                heap: np.ndarray, ended: np.ndarray, g: np.ndarray, opt: np.ndarray) -> bool:
    """Run every timer due at network time; False if ``ended`` filled up first."""
    t = g[G_NT]
    while g[G_HEAP_N] > 0 and heap[0, 0] <= t:
        if g[G_ENDED_N] >= ended.shape[0]:
            return False
        due, seq, slot = heap[0, 0], heap[0, 1], heap[0, 2]
        heap_pop(heap, g)
        if conn[slot, C_WAKE_SEQ] != seq:
            continue  # superseded by an earlier wake-up, or the flow ended
        conn[slot, C_WAKE_SEQ] = -1
        reason = _wake(conn, ep, heap, g, opt, slot, t)
        if reason >= 0:
            remove_flow(conn, keys, table, ended, g, opt, slot, reason)
            conn[slot, C_FIRED_T] = due
    return True


def live_entries(conn: np.ndarray, heap: np.ndarray) -> np.ndarray:
    """For heap rows (n, 4): is the entry its flow's live wake-up? (numpy, for compaction)."""
    return conn[heap[:, 2], C_WAKE_SEQ] == heap[:, 1]
