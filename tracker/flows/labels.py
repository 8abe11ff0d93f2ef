"""The state columns of finished flows, vectorized: Zeek's conn_state, netstat, conntrack.

conn_state follows ``base/protocols/conn/main.zeek`` ``conn_state()`` (docs/flow-record.md
section 4) from the two Zeek endpoint states, the endpoint sizes and the history. The
netstat and conntrack views (beyond Zeek) are read from the NS_* evidence bits
each side's packets left (layout.py); the rules are in the docstrings below.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import numpy as np

from tracker.flows.layout import (
    CLOSED,
    ESTABLISHED,
    INACTIVE,
    NS_FIN,
    NS_FIN_ACKED,
    NS_FIN_FIRST,
    NS_HS_ACK,
    NS_RST,
    NS_SYN,
    NS_SYNACK,
    PARTIAL,
    RESET,
    SYN_ACK_SENT,
    SYN_SENT,
)

CONN_STATES = ("S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH",
               "SHR", "OTH")
NETSTAT_STATES = ("SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2",
                  "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT", "CLOSE")
CONNTRACK_STATES = ("SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
                    "TIME_WAIT", "CLOSE", "UNREPLIED", "REPLIED", "ASSURED")
MISSING = 255  # code of an absent state

_CS = {name: i for i, name in enumerate(CONN_STATES)}
_NS = {name: i for i, name in enumerate(NETSTAT_STATES)}
_CT = {name: i for i, name in enumerate(CONNTRACK_STATES)}
_RSTOS0 = re.compile(r"\^?S[^HAFGIQ]*R.*")  # main.zeek: /\^?S[^HAFGIQ]*R.*/ == c$history
ASSURED_AFTER_NS = 2_000_000_000  # nf_conntrack_proto_udp.c: stream after 2 s with replies


def _rstos0(history: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Candidates whose history fully matches the RSTOS0 pattern (regex per unique value)."""
    out = np.zeros(len(history), dtype=bool)
    if candidate.any():
        uniq, inv = np.unique(history[candidate], return_inverse=True)
        hits = np.array([_RSTOS0.fullmatch(h.decode()) is not None for h in uniq], dtype=bool)
        out[candidate] = hits[inv.reshape(-1)]
    return out


# Each rule below is evaluated once over every input it can get (Zeek endpoint states:
# 7 values; evidence bits: 9 bits a side) and then looked up: a batch's states cost
# an indexing each instead of ~30 array operations (records.extract on gen_pcap 5M,
# 240 batches: 0.34 -> 0.1 s).
ENDPOINT_STATES = RESET + 1
NS_VALUES = NS_HS_ACK << 1  # every NS_* bit is below this


def tcp_conn_state(os_: np.ndarray, rs: np.ndarray, osize: np.ndarray, rsize: np.ndarray,
                   history: np.ndarray) -> np.ndarray:
    """conn_state codes of TCP flows (_conn_state_rules, looked up)."""
    r_in = (rs == INACTIVE) | (rs == PARTIAL)
    rstos0 = _rstos0(history, (os_ == RESET) & r_in)
    sizes_zero = (osize == 0) & (rsize == 0)
    return _conn_state_table()[os_, rs, sizes_zero.astype(np.intp), rstos0.astype(np.intp)]


@functools.cache
def _conn_state_table() -> np.ndarray:
    os_, rs, zero, rstos0 = np.indices((ENDPOINT_STATES, ENDPOINT_STATES, 2, 2)).reshape(4, -1)
    codes = _conn_state_rules(os_, rs, zero.astype(bool), rstos0.astype(bool))
    return codes.reshape(ENDPOINT_STATES, ENDPOINT_STATES, 2, 2)


def _conn_state_rules(os_: np.ndarray, rs: np.ndarray, sizes_zero: np.ndarray,
                      rstos0: np.ndarray) -> np.ndarray:
    """conn_state codes of TCP flows, the rules of main.zeek in their order, from the two
    endpoint states, whether both sizes are 0, and whether the history matches RSTOS0."""
    o_in = (os_ == INACTIVE) | (os_ == PARTIAL)
    r_in = (rs == INACTIVE) | (rs == PARTIAL)
    o_syn = (os_ == SYN_SENT) | (os_ == SYN_ACK_SENT)
    rej = o_syn | ((os_ == RESET) & sizes_zero)
    conds = [
        (rs == RESET) & rej, (rs == RESET) & o_in, rs == RESET,
        rstos0 & (os_ == RESET) & r_in, (os_ == RESET) & r_in, os_ == RESET,
        (rs == CLOSED) & (os_ == CLOSED), (os_ == CLOSED) & r_in, os_ == CLOSED,
        (rs == CLOSED) & o_in, rs == CLOSED,
        (os_ == SYN_SENT) & (rs == INACTIVE), (os_ == ESTABLISHED) & (rs == ESTABLISHED),
    ]
    names = ["REJ", "RSTRH", "RSTR", "RSTOS0", "OTH", "RSTO", "SF", "SH", "S2", "SHR", "S3",
             "S0", "S1"]
    return np.select(conds, [_CS[n] for n in names], _CS["OTH"]).astype(np.uint8)


def datagram_conn_state(o_active: np.ndarray, r_active: np.ndarray) -> np.ndarray:
    """conn_state codes of UDP flows (ICMP and others are always OTH)."""
    out = np.where(o_active, np.where(r_active, _CS["SF"], _CS["S0"]),
                   np.where(r_active, _CS["SHR"], _CS["OTH"]))
    return out.astype(np.uint8)


@functools.cache
def _pair_table(rule: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """``rule`` over every pair of evidence bit sets, as a (NS_VALUES, NS_VALUES) table."""
    mine, peer = np.divmod(np.arange(NS_VALUES * NS_VALUES, dtype=np.int64), NS_VALUES)
    return rule(mine, peer).reshape(NS_VALUES, NS_VALUES)


def netstat_state(mine: np.ndarray, peer: np.ndarray) -> np.ndarray:
    """_netstat_rules, looked up."""
    return _pair_table(_netstat_rules)[mine, peer]


def conntrack_tcp_state(o: np.ndarray, r: np.ndarray) -> np.ndarray:
    """_conntrack_tcp_rules, looked up."""
    return _pair_table(_conntrack_tcp_rules)[o, r]


def _netstat_rules(mine: np.ndarray, peer: np.ndarray) -> np.ndarray:
    """The Linux netstat state of one host's socket, from both sides' evidence bits.

    RFC 9293 3.3.2 per host: any RST -> CLOSE; both FINs -> the first closer is
    TIME_WAIT once its FIN was acked (else CLOSING), the second LAST_ACK until
    its FIN is acked, then CLOSE; only my FIN -> FIN_WAIT2 if acked else
    FIN_WAIT1; only the peer's FIN -> CLOSE_WAIT; my bare SYN not yet followed by
    my handshake ACK -> SYN_SENT; my SYN-ACK not yet acked -> SYN_RECV; any other
    traffic -> ESTABLISHED; a host that sent nothing and got no FIN -> missing.
    """
    both_fin = (mine & NS_FIN != 0) & (peer & NS_FIN != 0)
    acked = mine & NS_FIN_ACKED != 0
    first = mine & NS_FIN_FIRST != 0
    conds = [
        (mine | peer) & NS_RST != 0, both_fin & first & acked, both_fin & first,
        both_fin & acked, both_fin, (mine & NS_FIN != 0) & acked, mine & NS_FIN != 0,
        peer & NS_FIN != 0, (mine & NS_SYN != 0) & (mine & NS_HS_ACK == 0),
        (mine & NS_SYNACK != 0) & (peer & NS_HS_ACK == 0), mine != 0,
    ]
    names = ["CLOSE", "TIME_WAIT", "CLOSING", "CLOSE", "LAST_ACK", "FIN_WAIT2", "FIN_WAIT1",
             "CLOSE_WAIT", "SYN_SENT", "SYN_RECV", "ESTABLISHED"]
    return np.select(conds, [_NS[n] for n in names], MISSING).astype(np.uint8)


def _conntrack_tcp_rules(o: np.ndarray, r: np.ndarray) -> np.ndarray:
    """One middlebox view of a TCP flow in Linux conntrack's words (nf_conntrack_proto_tcp.c).

    RST -> CLOSE; both FINs -> TIME_WAIT when the second FIN was acked, else
    LAST_ACK; one FIN -> CLOSE_WAIT when acked, else FIN_WAIT; a SYN answered by
    a SYN-ACK -> ESTABLISHED once the SYN's sender acked, else SYN_RECV; a lone
    SYN -> SYN_SENT; traffic picked up midstream -> ESTABLISHED.
    """
    both = o | r
    second = np.where(o & NS_FIN_FIRST != 0, r, o)  # the side that closed second
    one_fin = np.where(o & NS_FIN != 0, o, r)
    syn_side = np.where(o & NS_SYN != 0, o, r)
    conds = [
        both & NS_RST != 0, (o & r & NS_FIN != 0) & (second & NS_FIN_ACKED != 0),
        o & r & NS_FIN != 0, (both & NS_FIN != 0) & (one_fin & NS_FIN_ACKED != 0),
        both & NS_FIN != 0, (both & NS_SYN != 0) & (both & NS_SYNACK != 0)
        & (syn_side & NS_HS_ACK != 0), (both & NS_SYN != 0) & (both & NS_SYNACK != 0),
        both & NS_SYN != 0,
    ]
    names = ["CLOSE", "TIME_WAIT", "LAST_ACK", "CLOSE_WAIT", "FIN_WAIT", "ESTABLISHED",
             "SYN_RECV", "SYN_SENT"]
    return np.select(conds, [_CT[n] for n in names], _CT["ESTABLISHED"]).astype(np.uint8)


def conntrack_datagram_state(o_pkts: np.ndarray, r_pkts: np.ndarray,
                             duration_ns: np.ndarray) -> np.ndarray:
    """UNREPLIED (one side), REPLIED (both), ASSURED (both, and on past 2 s)."""
    both = (o_pkts > 0) & (r_pkts > 0)
    out = np.where(both, np.where(duration_ns > ASSURED_AFTER_NS, _CT["ASSURED"],
                                  _CT["REPLIED"]), _CT["UNREPLIED"])
    return out.astype(np.uint8)
