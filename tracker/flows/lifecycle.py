"""Compiled flow life cycle: timers (Zeek's rules), removal, LRU order.

Zeek's timer rules (ZEEK-FACTS.md 3, ``RunState.cc`` L220-258): before a
packet is processed, network time becomes max(network time, packet time) and
every timer due at or before it fires, in time order, each seeing ``t`` =
network time. The four timers that matter by default:

- inactivity (``Session.cc`` L91-183): due at last_time + timeout; removes the
  flow if ``last_time + timeout <= t``, else re-arms;
- TCP attempt (``TCPSessionAdapter.cc`` L1068-1081): one shot, t_SYN + 5 s;
  removes a flow whose originator is SYN_SENT / SYN_ACK_SENT and whose
  responder is INACTIVE;
- TCP expire (L1099-1145): checks, then re-arms at t + tcp_session_timer;
- TCP conn-delete (L1256-1261): last_time + close delay; removes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tracker.flows.layout import (
    C_ANA_GEN,
    C_END_REASON,
    C_END_TS,
    C_FLAGS,
    C_GEN,
    C_INACT_GEN,
    C_INACT_TO,
    C_LAST,
    C_LRU_NEXT,
    C_LRU_PREV,
    C_ORIG_SIDE,
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
    INACTIVE,
    O_CAP,
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


@njit(cache=True)
def push_timer(conn: np.ndarray, ht: np.ndarray, hv: np.ndarray, g: np.ndarray,
               slot: int, t: int, kind: int) -> None:
    """Schedule a timer of ``kind`` for ``slot`` at ``t``."""
    tgen = conn[slot, C_INACT_GEN] if kind == T_INACT else conn[slot, C_ANA_GEN]
    heap_push(ht, hv, g, t, slot, conn[slot, C_GEN], tgen, kind)


@njit(cache=True)
def set_inactivity(conn: np.ndarray, ht: np.ndarray, hv: np.ndarray, g: np.ndarray,
                   slot: int, timeout: int) -> None:
    """Session::SetInactivityTimeout: no-op if unchanged, else re-arm at last_time + timeout."""
    if timeout == conn[slot, C_INACT_TO]:
        return
    conn[slot, C_INACT_GEN] += 1  # cancels the pending inactivity timer
    conn[slot, C_INACT_TO] = timeout
    if timeout > 0:
        push_timer(conn, ht, hv, g, slot, conn[slot, C_LAST] + timeout, T_INACT)


@njit(cache=True)
def cancel_analyzer_timers(conn: np.ndarray, slot: int) -> None:
    """TCPSessionAdapter::CancelTimers: attempt, expire and delete timers go."""
    conn[slot, C_ANA_GEN] += 1
    conn[slot, C_FLAGS] &= ~F_ATTEMPT


@njit(cache=True)
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


@njit(cache=True)
def lru_append(conn: np.ndarray, g: np.ndarray, slot: int) -> None:
    tail = g[G_LRU_TAIL]
    conn[slot, C_LRU_PREV] = tail
    conn[slot, C_LRU_NEXT] = -1
    if tail >= 0:
        conn[tail, C_LRU_NEXT] = slot
    else:
        g[G_LRU_HEAD] = slot
    g[G_LRU_TAIL] = slot


@njit(cache=True)
def remove_flow(conn: np.ndarray, keys: np.ndarray, table: np.ndarray, ended: np.ndarray,
                g: np.ndarray, opt: np.ndarray, slot: int, reason: int) -> None:
    """session_mgr->Remove: the flow ends now; its slot waits in ``ended`` for Python."""
    conn[slot, C_END_REASON] = reason
    conn[slot, C_END_TS] = g[G_NT]
    conn[slot, C_FLAGS] &= ~F_OPEN
    conn[slot, C_GEN] += 1  # every pending timer of the flow is now stale
    ht_delete(table, keys, slot, g)
    if opt[O_CAP] >= 0:
        lru_unlink(conn, g, slot)
    ended[g[G_ENDED_N]] = slot
    g[G_ENDED_N] += 1
    g[G_OPEN] -= 1


@njit(cache=True)
def _states(conn: np.ndarray, ep: np.ndarray, slot: int) -> tuple[int, int, int, int]:
    """(orig state, resp state, orig did_close, resp did_close)."""
    o = 2 * slot + conn[slot, C_ORIG_SIDE]
    r = 2 * slot + 1 - conn[slot, C_ORIG_SIDE]
    return ep[o, E_STATE], ep[r, E_STATE], ep[o, E_DID_CLOSE], ep[r, E_DID_CLOSE]


@njit(cache=True)
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


@njit(cache=True)
def _dispatch(conn: np.ndarray, ep: np.ndarray, ht: np.ndarray, hv: np.ndarray,
              g: np.ndarray, opt: np.ndarray, slot: int, kind: int, t: int) -> int:
    """Run one live timer at network time t: an end reason, or -1 to keep the flow."""
    if kind == T_INACT:
        deadline = conn[slot, C_LAST] + conn[slot, C_INACT_TO]
        if deadline <= t:
            return END_IDLE
        push_timer(conn, ht, hv, g, slot, deadline, T_INACT)
        return -1
    if kind == T_DELETE:
        os_, rs, _, _ = _states(conn, ep, slot)
        return END_RST if os_ == RESET or rs == RESET else END_FIN
    if conn[slot, C_FLAGS] & F_ACTIVE == 0:
        return -1
    if kind == T_ATTEMPT:
        conn[slot, C_FLAGS] &= ~F_ATTEMPT
        os_, rs, _, _ = _states(conn, ep, slot)
        if (os_ == SYN_SENT or os_ == SYN_ACK_SENT) and rs == INACTIVE:
            conn[slot, C_FLAGS] &= ~F_ACTIVE
            return END_IDLE
        return -1
    reason = _expire_check(conn, ep, slot, t, opt[O_LINGER])
    if reason < 0:
        push_timer(conn, ht, hv, g, slot, t + opt[O_SESSION], T_EXPIRE)
    return reason


@njit(cache=True)
def fire_timers(conn: np.ndarray, ep: np.ndarray, keys: np.ndarray, table: np.ndarray,
                ht: np.ndarray, hv: np.ndarray, ended: np.ndarray, g: np.ndarray,
                opt: np.ndarray) -> bool:
    """Fire every timer due at network time; False if ``ended`` filled up first."""
    t = g[G_NT]
    while g[G_HEAP_N] > 0 and ht[0, 0] <= t:
        if g[G_ENDED_N] >= ended.shape[0]:
            return False
        slot, gen, tgen, kind = hv[0, 0], hv[0, 1], hv[0, 2], hv[0, 3]
        heap_pop(ht, hv, g)
        if gen != conn[slot, C_GEN]:
            continue
        live = conn[slot, C_INACT_GEN] if kind == T_INACT else conn[slot, C_ANA_GEN]
        if tgen != live:
            continue
        reason = _dispatch(conn, ep, ht, hv, g, opt, slot, kind, t)
        if reason >= 0:
            remove_flow(conn, keys, table, ended, g, opt, slot, reason)
    return True


def timer_is_live(conn: np.ndarray, hv: np.ndarray) -> np.ndarray:
    """For heap entries hv (n, 4): is the timer still pending? (numpy, for compaction)."""
    slot = hv[:, 0]
    live_gen = np.where(hv[:, 3] == T_INACT, conn[slot, C_INACT_GEN], conn[slot, C_ANA_GEN])
    return (hv[:, 1] == conn[slot, C_GEN]) & (hv[:, 2] == live_gen)


__all__ = [
    "T_ATTEMPT",
    "T_DELETE",
    "T_EXPIRE",
    "cancel_analyzer_timers",
    "fire_timers",
    "lru_append",
    "lru_unlink",
    "push_timer",
    "remove_flow",
    "set_inactivity",
    "timer_is_live",
]
