"""The compiled per-packet walk of the flow table (one call per batch, resumable).

For each packet, in order (as Zeek's ``RunState.cc`` and ``Session.cc``): advance network time,
fire due timers, find the flow by key, apply connection reuse (TCP) or the
active timeout, create the flow if needed (with Zeek's originator rules and
the open-flow cap), run the protocol's logic, count the packet, and write its
flow id. The walk stops early, returning where it stopped, when the state
arrays need to grow or ended flows need collecting; the caller does that and
calls again, so results never depend on where a batch begins or ends.
The compiled functions are built by jit.py (see there why without numba's
reference-counting runtime).
"""

from __future__ import annotations

import numpy as np

from tracker.flows.history import add_history, check_history, scaled_entry
from tracker.flows.layout import (
    C_DACTIVE,
    C_DELETE_T,
    C_DSIZE,
    C_ENCAP,
    C_EXPIRE,
    C_FLAGS,
    C_FLOW_ID,
    C_IP_BYTES,
    C_LAST,
    C_NPARENTS,
    C_ORIG_REASON,
    C_ORIG_SIDE,
    C_PARENTS,
    C_PAYLOAD,
    C_PKTS,
    C_PROTO,
    C_SEEN,
    C_START,
    C_TCHANGES,
    C_VLAN,
    C_WAKE_SEQ,
    C_WIRE,
    DONE,
    E_CHK_CNT,
    E_CHK_THR,
    E_DID_CLOSE,
    E_GAP_THR,
    E_REASM,
    E_RXMT_THR,
    E_START_SEQ,
    E_STATE,
    E_WIN0_THR,
    END_ACTIVE,
    END_EVICTED,
    END_REUSE,
    F_ACTIVE,
    F_DNS_SEEN,
    F_NTP_FLIPPED,
    F_OPEN,
    F_PARTIAL,
    G_ENDED_N,
    G_EVICTED,
    G_FREE_N,
    G_HEAP_N,
    G_HT_N,
    G_LRU_HEAD,
    G_LRU_TAIL,
    G_NEXT_ID,
    G_NT,
    G_NT_SET,
    G_OPEN,
    G_ROW,
    G_ROW_BASE,
    G_ROW_IDS,
    G_TUNNELS,
    GOOD_HEADER_CUT,
    GOOD_YES,
    INACTIVE,
    MAX_PARENTS,
    N_EXPIRE,
    NEED_ENDED,
    NEED_HASH,
    NEED_HEAP,
    NEED_SLOTS,
    O_ACTIVE,
    O_CAP,
    O_DNS_SESSION,
    O_ICMP_INACT,
    O_OTHER_INACT,
    O_SYN_TO,
    O_UDP_INACT,
    P_ACK,
    P_BCAST,
    P_CARRIER,
    P_DNS_QR,
    P_DPORT,
    P_ENCAP,
    P_FLAGS,
    P_GOOD,
    P_IP_LEN,
    P_LEN,
    P_NTP_MODE,
    P_PAYLOAD,
    P_PROTO,
    P_SEQ,
    P_SPORT,
    P_SRC_A,
    P_TS,
    P_TUNNEL,
    P_VLAN,
    P_WIN,
    P_WIRE,
    ROW_ID,
    SYN_ACK_SENT,
    T_EXPIRE,
    TUNNEL_REFUSED,
    WHY_FIRST,
    WHY_SERVER_PORT,
    WHY_SYN,
)
from tracker.flows.layout import (
    E_CHK_THR as _E_CHK_THR,
)
from tracker.flows.store import ht_find, ht_insert
from tracker.flows.tcp_endpoint import C_, CARET, D_, M32, TH_ACK, TH_SYN, lower, scaled
from tracker.flows.tcp_session import tcp_process
from tracker.flows.timers import (
    add_timer,
    fire_timers,
    lru_append,
    lru_unlink,
    remove_flow,
    set_inactivity,
)
from tracker.jit import kernel, kernel_inline
from tracker.packets import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP

HIST_ORIG_DATA_PKT, HIST_RESP_DATA_PKT = 0x1, 0x2  # UDP.cc


@kernel
def _room(free_n: int, ended: np.ndarray, g: np.ndarray, heap: np.ndarray,
          table: np.ndarray) -> int:
    """Whether one more packet can be processed without growing anything."""
    if free_n < 1:
        return NEED_SLOTS
    if g[G_ENDED_N] + 3 > ended.shape[0]:
        return NEED_ENDED
    if g[G_HEAP_N] + 8 > heap.shape[0]:
        return NEED_HEAP
    if 2 * (g[G_HT_N] + 1) > table.shape[0]:
        return NEED_HASH
    return DONE


@kernel
def is_reuse(conn: np.ndarray, ep: np.ndarray, slot: int, flags: int, seq: int) -> bool:
    """TCPSessionAdapter::IsReuse for a SYN on an existing flow (TCPSessionAdapter.cc)."""
    o = 2 * slot + conn[slot, C_ORIG_SIDE]
    r = 2 * slot + 1 - conn[slot, C_ORIG_SIDE]
    ref = o
    if flags & TH_ACK:
        if ep[o, E_STATE] != INACTIVE:
            return False  # not a half connection
        ref = r
    if ep[o, E_DID_CLOSE] or ep[r, E_DID_CLOSE]:
        return True
    if seq == ep[ref, E_START_SEQ] & M32:
        return False  # a retransmitted SYN or SYN-ACK
    # Not a reuse either: a SYN and SYN-ACK seen in reverse order.
    return not (not flags & TH_ACK and ep[ref, E_STATE] == SYN_ACK_SENT
                and ep[r, E_STATE] == INACTIVE and seq == ep[r, E_START_SEQ] & M32)


@kernel
def _orig_side(pi: np.ndarray, i: int, lsp: np.ndarray) -> tuple[int, int]:
    """(originator side, orig_reason) of a new flow: TCP.cc / UDP.cc WantConnection."""
    src_side = 0 if pi[P_SRC_A, i] else 1
    proto, sp, dp = pi[P_PROTO, i], pi[P_SPORT, i], pi[P_DPORT, i]
    flip = False
    why = WHY_FIRST
    if proto == PROTO_TCP:
        flags = pi[P_FLAGS, i]
        if flags & TH_SYN and not flags & TH_ACK:
            why = WHY_SYN
        elif lsp[0, sp]:
            flip = (not flags & TH_SYN and sp < dp) if lsp[0, dp] else True
    elif proto == PROTO_UDP:
        flip = lsp[1, sp] and not lsp[1, dp]
    if flip and not pi[P_BCAST, i]:  # IPBasedAnalyzer.cc L174: no flip towards broadcast
        return 1 - src_side, WHY_SERVER_PORT
    return src_side, why


@kernel
def _new_flow(conn: np.ndarray, ep: np.ndarray, keys: np.ndarray, hist: np.ndarray,
              table: np.ndarray, heap: np.ndarray, free: np.ndarray,
              g: np.ndarray, opt: np.ndarray, pk: np.ndarray, pi: np.ndarray, i: int,
              lsp: np.ndarray) -> int:
    """IPBasedAnalyzer::NewConn: a new flow from packet i."""
    g[G_FREE_N] -= 1
    slot = free[g[G_FREE_N]]
    conn[slot, :] = 0
    conn[slot, C_WAKE_SEQ] = conn[slot, C_DELETE_T] = -1
    conn[slot, C_EXPIRE:C_EXPIRE + N_EXPIRE] = -1
    ep[2 * slot:2 * slot + 2, :] = 0
    for col in (E_RXMT_THR, E_WIN0_THR, _E_CHK_THR, E_GAP_THR, E_REASM):
        ep[2 * slot, col] = ep[2 * slot + 1, col] = 1  # thresholds; data starts at 1
    for j in range(5):
        keys[slot, j] = pk[i, j]
    ts, proto = pi[P_TS, i], pi[P_PROTO, i]
    if g[G_ROW_IDS]:
        conn[slot, C_FLOW_ID] = ROW_ID + g[G_ROW_BASE] + i
    else:
        conn[slot, C_FLOW_ID] = g[G_NEXT_ID]
        g[G_NEXT_ID] += 1
    conn[slot, C_START] = conn[slot, C_LAST] = conn[slot, C_SEEN] = ts
    conn[slot, C_PROTO] = proto
    conn[slot, C_VLAN] = pi[P_VLAN, i]
    side, why = _orig_side(pi, i, lsp)
    conn[slot, C_ORIG_SIDE] = side
    conn[slot, C_ORIG_REASON] = why
    if why == WHY_SERVER_PORT:
        add_history(conn, hist, slot, CARET)
    conn[slot, C_FLAGS] = F_OPEN
    if proto == PROTO_TCP:  # TCP.cc L23 really uses the UDP timeout at first
        conn[slot, C_FLAGS] |= F_ACTIVE
        if not pi[P_FLAGS, i] & TH_SYN:
            conn[slot, C_FLAGS] |= F_PARTIAL
        set_inactivity(conn, heap, g, slot, opt[O_UDP_INACT])
        add_timer(conn, heap, g, slot, g[G_NT] + opt[O_SYN_TO], T_EXPIRE)
    elif proto == PROTO_UDP:
        set_inactivity(conn, heap, g, slot, opt[O_UDP_INACT])
        if lsp[2, _resp_port(conn, keys, slot)]:  # the DNS analyzer attaches (by port)
            add_timer(conn, heap, g, slot, g[G_NT] + opt[O_DNS_SESSION], T_EXPIRE)
    elif proto == PROTO_ICMP or proto == PROTO_ICMPV6:
        set_inactivity(conn, heap, g, slot, opt[O_ICMP_INACT])
    else:
        set_inactivity(conn, heap, g, slot, opt[O_OTHER_INACT])
    ht_insert(table, keys, slot, g)
    g[G_OPEN] += 1
    if opt[O_CAP] >= 0:
        lru_append(conn, g, slot)
    return slot


NTP_CLIENT, NTP_SERVER = 3, 4  # NTP modes (RFC 5905 section 7.3)

# What _datagram says of a packet: not counted, counted for its sender, or counted for
# the other side (it flipped the roles: ZEEK-FACTS 9.3).
NOT_COUNTED, COUNTED, COUNTED_FOR_PEER = 0, 1, 2


@kernel_inline
def _datagram(conn: np.ndarray, ep: np.ndarray, keys: np.ndarray, hist: np.ndarray, slot: int,
              side: int, pi: np.ndarray, i: int, lsp: np.ndarray) -> int:
    """UDP.cc / ICMP.cc / UnknownIPTransport for one packet: whether and for whom it counts."""
    proto = pi[P_PROTO, i]
    is_orig = side == conn[slot, C_ORIG_SIDE]
    if not pi[P_GOOD, i]:
        if proto == PROTO_UDP:  # UDPSessionAdapter::HandleBadChecksum
            scaled_entry(conn, hist, slot, ep, 2 * slot + side, E_CHK_CNT, E_CHK_THR,
                         C_ if is_orig else lower(C_))
        return NOT_COUNTED
    conn[slot, C_LAST] = pi[P_TS, i]
    if proto == PROTO_UDP:
        if is_orig:
            check_history(conn, hist, slot, HIST_ORIG_DATA_PKT, D_)
        else:
            check_history(conn, hist, slot, HIST_RESP_DATA_PKT, lower(D_))
    if proto == PROTO_UDP:
        # UDPSessionAdapter::UpdateLength: a side's total made negative by a length field
        # under 8 starts anew with the next datagram's length
        size = conn[slot, C_DSIZE + side]
        conn[slot, C_DSIZE + side] = pi[P_LEN, i] if size < 0 else size + pi[P_LEN, i]
        conn[slot, C_DACTIVE + side] = 1
    elif proto == PROTO_ICMP or proto == PROTO_ICMPV6:
        conn[slot, C_DSIZE + side] += pi[P_LEN, i]
        conn[slot, C_DACTIVE + side] = 1
    flipped = False
    if proto == PROTO_UDP and pi[P_DNS_QR, i] >= 0:
        flipped = _dns_message(conn, keys, hist, slot, is_orig, pi[P_DNS_QR, i] == 1, lsp)
    if proto == PROTO_UDP and pi[P_NTP_MODE, i] >= 0 and not flipped:
        flipped = _ntp_message(conn, keys, hist, slot, is_orig, pi[P_NTP_MODE, i], lsp)
    return COUNTED_FOR_PEER if flipped else COUNTED


@kernel_inline
def _resp_port(conn: np.ndarray, keys: np.ndarray, slot: int) -> int:
    oside = conn[slot, C_ORIG_SIDE]
    return int(keys[slot, 4] >> np.uint64(16 if oside == 0 else 32)) & 0xFFFF


@kernel
def _flip_roles(conn: np.ndarray, hist: np.ndarray, slot: int) -> None:
    """Connection::FlipRoles called by a UDP port analyzer in the middle of a packet
    (ZEEK-FACTS 9.3): the roles swap and '^' follows the packet's letter; the UDP
    adapter is not flipped, so the byte counts and active marks behind orig_bytes,
    resp_bytes and conn_state stay with the roles, not the hosts. (Packets and IP bytes,
    counted per host here, follow the hosts as ConnSize's swap makes them; the caller
    counts this packet for the other host, as ConnSize does with its stale is_orig.)"""
    conn[slot, C_ORIG_SIDE] = 1 - conn[slot, C_ORIG_SIDE]
    for col in (C_DSIZE, C_DACTIVE):
        conn[slot, col], conn[slot, col + 1] = conn[slot, col + 1], conn[slot, col]
    add_history(conn, hist, slot, CARET)


@kernel
def _dns_message(conn: np.ndarray, keys: np.ndarray, hist: np.ndarray, slot: int,
                 is_orig: bool, response: bool, lsp: np.ndarray) -> bool:
    """DNS.cc L86-92: the analyzer's first message, a response from the originator,
    flips the roles unless the responder is multicast (IPAddr.h IsMulticast)."""
    if conn[slot, C_FLAGS] & F_DNS_SEEN or not lsp[2, _resp_port(conn, keys, slot)]:
        return False
    conn[slot, C_FLAGS] |= F_DNS_SEEN
    oside = conn[slot, C_ORIG_SIDE]
    hi, lo = keys[slot, 2 - 2 * oside], keys[slot, 3 - 2 * oside]  # responder address
    v4_multicast = hi == 0 and (lo >> np.uint64(32)) == 0xFFFF \
        and ((lo >> np.uint64(24)) & np.uint64(0xFF)) == 224
    if is_orig and response and not (v4_multicast or (hi >> np.uint64(56)) == 0xFF):
        _flip_roles(conn, hist, slot)
        return True
    return False


@kernel
def _ntp_message(conn: np.ndarray, keys: np.ndarray, hist: np.ndarray, slot: int,
                 is_orig: bool, mode: int, lsp: np.ndarray) -> bool:
    """ntp-analyzer.pac L141-150: a server-mode (4) message from the originator or a
    client-mode (3) one from the responder flips the roles, once per connection."""
    if conn[slot, C_FLAGS] & F_NTP_FLIPPED or not lsp[3, _resp_port(conn, keys, slot)]:
        return False
    if (is_orig and mode == NTP_SERVER) or (not is_orig and mode == NTP_CLIENT):
        conn[slot, C_FLAGS] |= F_NTP_FLIPPED
        _flip_roles(conn, hist, slot)
        return True
    return False


@kernel_inline
def _count(conn: np.ndarray, slot: int, side: int, pi: np.ndarray, i: int) -> None:
    """ConnSize_Analyzer: packets and IP bytes, plus wire and payload bytes."""
    conn[slot, C_PKTS + side] += 1
    conn[slot, C_IP_BYTES + side] += pi[P_IP_LEN, i]
    conn[slot, C_WIRE + side] += pi[P_WIRE, i]
    conn[slot, C_PAYLOAD + side] += pi[P_PAYLOAD, i]


HIST_LIMIT = 1 << 40  # hist_seen bit of 'X', HIST_ANALYZER_LIMIT_REACHED (Session.h L27)
X_ = 88  # 'X'


@kernel_inline
def _process(conn: np.ndarray, ep: np.ndarray, keys: np.ndarray, hist: np.ndarray,
             heap: np.ndarray, g: np.ndarray, opt: np.ndarray, slot: int,
             pi: np.ndarray, i: int, lsp: np.ndarray, long_ports: np.ndarray) -> None:
    side = 0 if pi[P_SRC_A, i] else 1
    if pi[P_PROTO, i] == PROTO_TCP:
        counts = pi[P_GOOD, i] == GOOD_YES
        if pi[P_GOOD, i] == GOOD_HEADER_CUT:
            return  # the connection exists; nothing else happens (TCP.cc L86-90)
        if counts:
            ports = (int(keys[slot, 4] >> np.uint64(32)) & 0xFFFF,
                     int(keys[slot, 4] >> np.uint64(16)) & 0xFFFF)
            tcp_process(conn, ep, hist, heap, g, opt, slot, side, pi[P_FLAGS, i],
                        pi[P_SEQ, i], pi[P_ACK, i], pi[P_WIN, i], pi[P_LEN, i], pi[P_TS, i],
                        long_ports, lsp[0], ports)
        else:  # TCPAnalyzer::ValidateChecksum failed: ChecksumError, nothing else
            scaled(conn, ep, hist, slot, side, E_CHK_CNT, E_CHK_THR, C_)
        if counts:
            _count(conn, slot, side, pi, i)
        return
    counted = _datagram(conn, ep, keys, hist, slot, side, pi, i, lsp)
    if counted != NOT_COUNTED:
        _count(conn, slot, side if counted == COUNTED else 1 - side, pi, i)
    if pi[P_FLAGS, i] & TUNNEL_REFUSED:  # the tunnel analyzer, after UDP's (VXLAN.cc L23-27)
        check_history(conn, hist, slot, HIST_LIMIT, X_)


MAX_TUNNEL_CHANGES = 5  # Tunnel::max_changes_per_connection (init-bare L780)


@kernel_inline
def _add_parent(conn: np.ndarray, slot: int, parent: int) -> None:
    """Add a tunnel parent id (a set: each id once; at most MAX_PARENTS)."""
    n = conn[slot, C_NPARENTS]
    if parent < 0 or n >= MAX_PARENTS:
        return
    for j in range(n):
        if conn[slot, C_PARENTS + j] == parent:
            return
    conn[slot, C_PARENTS + n] = parent
    conn[slot, C_NPARENTS] = n + 1


@kernel
def _tunnel(conn: np.ndarray, hist: np.ndarray, slot: int, new: bool, pi: np.ndarray, i: int,
            out_fid: np.ndarray) -> None:
    """tunnel_parents (ZEEK-FACTS 6.4): the immediate parent of the first packet
    (conn/main.zeek L254-259), then that of each new tunnel stack (Connection::
    CheckEncapsulation, Conn.cc L101-135; tunnel_changed, main.zeek L303-312). Every
    change counts, to or from no tunnel too (which adds no parent); past
    MAX_TUNNEL_CHANGES no parent is added and 'X' marks the flow once. The stored stack
    is replaced in every case. Called when the packet's stack differs from the flow's."""
    encap = pi[P_ENCAP, i]
    parent = pi[P_TUNNEL, i]
    if pi[P_CARRIER, i] >= 0:
        parent = out_fid[pi[P_CARRIER, i]]
    old = conn[slot, C_ENCAP]
    conn[slot, C_ENCAP] = encap
    if new:
        _add_parent(conn, slot, parent)
    elif old != encap:
        if conn[slot, C_TCHANGES] < MAX_TUNNEL_CHANGES:
            conn[slot, C_TCHANGES] += 1
            if encap != 0:
                _add_parent(conn, slot, parent)
        else:
            check_history(conn, hist, slot, HIST_LIMIT, X_)


@kernel_inline
def _existing(conn: np.ndarray, ep: np.ndarray, keys: np.ndarray, table: np.ndarray,
              ended: np.ndarray, g: np.ndarray, opt: np.ndarray, pk: np.ndarray,
              pi: np.ndarray, i: int) -> int:
    """The open flow of packet i, or -1 after ending it for reuse / active timeout."""
    slot = ht_find(table, keys, pk, i)
    if slot < 0:
        return -1
    if opt[O_ACTIVE] >= 0 and pi[P_TS, i] - conn[slot, C_START] >= opt[O_ACTIVE]:
        remove_flow(conn, keys, table, ended, g, opt, slot, END_ACTIVE)
        return -1
    if pi[P_PROTO, i] == PROTO_TCP and pi[P_FLAGS, i] & TH_SYN \
            and is_reuse(conn, ep, slot, pi[P_FLAGS, i], pi[P_SEQ, i]):
        remove_flow(conn, keys, table, ended, g, opt, slot, END_REUSE)
        return -1
    return slot


@kernel
def run_batch(pk: np.ndarray, pi: np.ndarray, out_fid: np.ndarray, pos: int,
              conn: np.ndarray, ep: np.ndarray, keys: np.ndarray, hist: np.ndarray,
              table: np.ndarray, heap: np.ndarray, free: np.ndarray,
              ended: np.ndarray, g: np.ndarray, opt: np.ndarray, lsp: np.ndarray,
              long_ports: np.ndarray, tick: np.ndarray) -> tuple[int, int]:
    """Walk packets pos.. of the batch; returns (DONE or NEED_*, where it stopped).

    Rows where ``tick`` (empty: none) is set only move network time and fire timers."""
    ticks = tick.shape[0] > 0
    for i in range(pos, pi.shape[1]):
        status = _room(g[G_FREE_N], ended, g, heap, table)
        if status != DONE:
            return status, i
        ts = pi[P_TS, i]
        if g[G_NT_SET] == 0 or ts > g[G_NT]:
            g[G_NT] = ts
            g[G_NT_SET] = 1
        g[G_ROW] = 2 * (g[G_ROW_BASE] + i)
        if g[G_HEAP_N] > 0 and heap[0, 0] <= g[G_NT] \
                and not fire_timers(conn, ep, keys, table, heap, ended, g, opt):
            return NEED_ENDED, i
        if ticks and tick[i]:
            continue
        g[G_ROW] += 1
        slot = _existing(conn, ep, keys, table, ended, g, opt, pk, pi, i)
        new = slot < 0
        if new:
            if opt[O_CAP] >= 0 and g[G_OPEN] >= opt[O_CAP]:
                remove_flow(conn, keys, table, ended, g, opt, g[G_LRU_HEAD], END_EVICTED)
                g[G_EVICTED] += 1
            slot = _new_flow(conn, ep, keys, hist, table, heap, free, g, opt, pk, pi, i, lsp)
        elif opt[O_CAP] >= 0 and g[G_LRU_TAIL] != slot:
            lru_unlink(conn, g, slot)
            lru_append(conn, g, slot)
        if g[G_TUNNELS] and pi[P_ENCAP, i] != conn[slot, C_ENCAP]:  # a tunnel, or none after one
            _tunnel(conn, hist, slot, new, pi, i, out_fid)
        _process(conn, ep, keys, hist, heap, g, opt, slot, pi, i, lsp, long_ports)
        conn[slot, C_SEEN] = max(conn[slot, C_SEEN], ts)
        out_fid[i] = conn[slot, C_FLOW_ID]
    return DONE, pi.shape[1]


@kernel
def run_timers(now: int, conn: np.ndarray, ep: np.ndarray, keys: np.ndarray,
               table: np.ndarray, heap: np.ndarray, ended: np.ndarray, g: np.ndarray,
               opt: np.ndarray) -> int:
    """Advance network time to ``now`` (never back) and fire due timers; DONE or NEED_ENDED."""
    if g[G_NT_SET] == 0 or now > g[G_NT]:
        g[G_NT] = now
        g[G_NT_SET] = 1
    if fire_timers(conn, ep, keys, table, heap, ended, g, opt):
        return DONE
    return NEED_ENDED
