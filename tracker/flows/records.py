"""FlowRecords: finished flows as numpy columns (one entry per flow).

The flows DataFrame (tracker/report/columns.py) documents each column
for users; these are the raw arrays behind it. Codes index the name tuples
below and labels.py; ``MISSING`` (255) marks an absent state.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

import numpy as np

from tracker.flows.labels import (
    CONN_STATES,
    MISSING,
    conntrack_datagram_state,
    conntrack_tcp_state,
    datagram_conn_state,
    netstat_state,
    tcp_conn_state,
)
from tracker.flows.layout import (
    C_DACTIVE,
    C_DSIZE,
    C_END_REASON,
    C_END_TS,
    C_FLOW_ID,
    C_IP_BYTES,
    C_LAST,
    C_MISSED,
    C_N,
    C_NPARENTS,
    C_ORIG_REASON,
    C_ORIG_SIDE,
    C_PARENTS,
    C_PAYLOAD,
    C_PKTS,
    C_PROTO,
    C_START,
    C_VLAN,
    C_WIRE,
    E_ACK_SEQ,
    E_ACK_WRAPS,
    E_FIN_CNT,
    E_LAST_SEQ,
    E_N,
    E_NS,
    E_PREV,
    E_SEQ_WRAPS,
    E_START_SEQ,
    E_STATE,
    HIST_MAX,
    INACTIVE,
    MAX_PARENTS,
    RESET,
    SYN_SENT,
)
from tracker.packets import PROTO_TCP, PROTO_UDP

END_REASONS = ("fin", "rst", "idle", "reuse", "active", "evicted", "eof", "stopped",
               "interrupted", "error", "open")
ORIG_REASONS = ("syn", "synack", "server_port", "first_packet")
_OTH = CONN_STATES.index("OTH")


@dataclass(slots=True)
class FlowRecords:
    """Finished flows, one entry per flow in every array (in the order they ended)."""

    flow_id: np.ndarray  # int64, unique per table, in order of creation
    first_ts: np.ndarray  # int64 ns: first packet
    last_ts: np.ndarray  # int64 ns: Zeek's last_time
    end_ts: np.ndarray  # int64 ns: network time when the flow was ended
    proto: np.ndarray  # int16 IP protocol number
    orig_hi: np.ndarray  # uint64 address halves of the originator ...
    orig_lo: np.ndarray
    resp_hi: np.ndarray  # ... and of the responder
    resp_lo: np.ndarray
    orig_port: np.ndarray  # int32 (ICMP: type)
    resp_port: np.ndarray  # int32 (ICMP: counterpart type or code)
    vlan: np.ndarray  # int32, -1 when untagged
    orig_reason: np.ndarray  # uint8 code into ORIG_REASONS
    conn_state: np.ndarray  # uint8 code into states.CONN_STATES
    history: np.ndarray  # bytes (S48), Zeek's history letters
    state: np.ndarray  # uint8 code into states.CONNTRACK_STATES
    orig_state: np.ndarray  # uint8 code into states.NETSTAT_STATES, 255 = none
    resp_state: np.ndarray
    end_reason: np.ndarray  # uint8 code into END_REASONS
    orig_pkts: np.ndarray  # int64 counters, per direction
    resp_pkts: np.ndarray
    orig_ip_bytes: np.ndarray
    resp_ip_bytes: np.ndarray
    orig_wire_bytes: np.ndarray
    resp_wire_bytes: np.ndarray
    orig_bytes: np.ndarray  # Zeek's orig_bytes (sequence space / UDP length / ICMP)
    resp_bytes: np.ndarray
    bytes_set: np.ndarray  # bool: Zeek sets orig/resp_bytes (duration > 0)
    orig_payload_bytes: np.ndarray
    resp_payload_bytes: np.ndarray
    missed_bytes: np.ndarray  # int64: Zeek's missed_bytes (content gaps)
    tunnel_parents: np.ndarray  # int64 (n, MAX_PARENTS): flow / IP tunnel ids, -1 after
    n_parents: np.ndarray  # uint8: how many of tunnel_parents are set

    def __len__(self) -> int:
        return int(self.flow_id.shape[0])

    @classmethod
    def empty(cls) -> FlowRecords:
        return cls.concat([])

    @classmethod
    def concat(cls, parts: list[FlowRecords]) -> FlowRecords:
        """All flows of ``parts``, in order."""
        if not parts:
            return _from_slots_empty()
        if len(parts) == 1:  # no copy: a flood ends a batch's worth of flows at once
            return parts[0]
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                      for f in fields(cls)})

    def take(self, index: np.ndarray | slice) -> FlowRecords:
        """The flows at ``index`` (a slice gives views, not copies)."""
        return FlowRecords(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


@functools.cache
def _from_slots_empty() -> FlowRecords:
    # Made once: extracting no slots costs ~2 ms, and most batches end no flow.
    # Zero-length arrays cannot be written, so one shared instance is safe.
    return extract(np.zeros((0, C_N), np.int64), np.zeros((0, E_N), np.int64),
                   np.zeros((0, 5), np.uint64), np.zeros((0, HIST_MAX), np.uint8),
                   np.zeros(0, np.int64))


def endpoint_sizes(me: np.ndarray, peer: np.ndarray) -> np.ndarray:
    """TCP_Endpoint::Size, vectorized: bytes of sequence space each endpoint sent (its
    row of ``ep`` in ``me``, its peer's in ``peer``), without the SYN and FIN octets."""
    start = me[:, E_START_SEQ]
    ack64 = (me[:, E_ACK_WRAPS] << 32) + me[:, E_ACK_SEQ]
    last64 = (me[:, E_SEQ_WRAPS] << 32) + me[:, E_LAST_SEQ]
    size = np.maximum(last64, ack64) - start
    size = np.where(size != 0, size - 1, size)
    size = np.where((me[:, E_FIN_CNT] > 0) & (size != 0), size - 1, size)
    aborted = (me[:, E_PREV] == SYN_SENT) & (me[:, E_STATE] == RESET) \
        & (peer[:, E_STATE] == INACTIVE) & (ack64 != start) & (ack64 != start + 1)
    return np.where(aborted, 0, size)


def _addresses(keys: np.ndarray, a_is_orig: np.ndarray) -> tuple[np.ndarray, ...]:
    """(orig_hi, orig_lo, resp_hi, resp_lo, orig_port, resp_port) from the keys."""
    port_a = ((keys[:, 4] >> np.uint64(32)) & np.uint64(0xFFFF)).astype(np.int32)
    port_b = ((keys[:, 4] >> np.uint64(16)) & np.uint64(0xFFFF)).astype(np.int32)
    pick = [np.where(a_is_orig, keys[:, x], keys[:, y]) for x, y in ((0, 2), (1, 3), (2, 0),
                                                                      (3, 1))]
    return (*pick, np.where(a_is_orig, port_a, port_b), np.where(a_is_orig, port_b, port_a))


def _history(hist: np.ndarray) -> np.ndarray:
    """Zeek's history strings as fixed-width bytes (letters past HIST_MAX are lost)."""
    return np.ascontiguousarray(hist).view(f"S{HIST_MAX}").ravel()


def extract(conn: np.ndarray, ep: np.ndarray, keys: np.ndarray, hist: np.ndarray,
            slots: np.ndarray) -> FlowRecords:
    """FlowRecords of the flows in ``slots`` (their end fields already set)."""
    c, k = conn[slots], keys[slots]
    oside = c[:, C_ORIG_SIDE]
    o, r = 2 * slots + oside, 2 * slots + 1 - oside
    a_is_orig = oside == 0
    addr = _addresses(k, a_is_orig)
    proto = c[:, C_PROTO].astype(np.int16)
    is_tcp, is_udp = proto == PROTO_TCP, proto == PROTO_UDP
    history = _history(hist[slots])
    on = lambda col: np.where(a_is_orig, c[:, col], c[:, col + 1])
    rn = lambda col: np.where(a_is_orig, c[:, col + 1], c[:, col])
    eo, er = ep[o], ep[r]  # each side's endpoint rows, gathered once
    # A UDP side whose total is negative (a length field under 8 last) is Zeek's
    # UDP_INACTIVE with size 0 (UDPSessionAdapter::UpdateEndpointVal).
    osize = np.where(is_tcp, endpoint_sizes(eo, er), np.maximum(on(C_DSIZE), 0))
    rsize = np.where(is_tcp, endpoint_sizes(er, eo), np.maximum(rn(C_DSIZE), 0))
    onsf, rnsf = eo[:, E_NS], er[:, E_NS]
    duration = c[:, C_LAST] - c[:, C_START]
    cstate = np.where(is_tcp, tcp_conn_state(eo[:, E_STATE], er[:, E_STATE], osize, rsize,
                                             history),
                      np.where(is_udp, datagram_conn_state(
                          (on(C_DACTIVE) != 0) & (on(C_DSIZE) >= 0),
                          (rn(C_DACTIVE) != 0) & (rn(C_DSIZE) >= 0)), _OTH))
    return FlowRecords(
        flow_id=c[:, C_FLOW_ID], first_ts=c[:, C_START], last_ts=c[:, C_LAST],
        end_ts=c[:, C_END_TS], proto=proto, orig_hi=addr[0], orig_lo=addr[1], resp_hi=addr[2],
        resp_lo=addr[3], orig_port=addr[4], resp_port=addr[5],
        vlan=c[:, C_VLAN].astype(np.int32), orig_reason=c[:, C_ORIG_REASON].astype(np.uint8),
        conn_state=cstate.astype(np.uint8), history=history,
        state=np.where(is_tcp, conntrack_tcp_state(onsf, rnsf),
                       conntrack_datagram_state(on(C_PKTS), rn(C_PKTS), duration)
                       ).astype(np.uint8),
        orig_state=np.where(is_tcp, netstat_state(onsf, rnsf), MISSING).astype(np.uint8),
        resp_state=np.where(is_tcp, netstat_state(rnsf, onsf), MISSING).astype(np.uint8),
        end_reason=c[:, C_END_REASON].astype(np.uint8),
        orig_pkts=on(C_PKTS), resp_pkts=rn(C_PKTS), orig_ip_bytes=on(C_IP_BYTES),
        resp_ip_bytes=rn(C_IP_BYTES), orig_wire_bytes=on(C_WIRE), resp_wire_bytes=rn(C_WIRE),
        orig_bytes=osize, resp_bytes=rsize, bytes_set=duration > 0,
        orig_payload_bytes=on(C_PAYLOAD), resp_payload_bytes=rn(C_PAYLOAD),
        missed_bytes=c[:, C_MISSED],
        tunnel_parents=_parents(c), n_parents=c[:, C_NPARENTS].astype(np.uint8),
    )


def endpoint_rows(slots: np.ndarray) -> np.ndarray:
    """The rows of ``ep`` of the flows in ``slots``: each flow's two, one after the other."""
    return np.stack([2 * slots, 2 * slots + 1], axis=1).ravel()


@dataclass
class EndedRows:
    """The table rows of ended flows, copied out as they are (a flow row, its two
    endpoint rows one after the other, its key and history): what ``extract`` makes
    FlowRecords of, later and elsewhere. A cluster's walk, which each file waits for,
    only copies them; the task after it makes the records (cluster.py)."""

    conn: np.ndarray
    ep: np.ndarray
    keys: np.ndarray
    hist: np.ndarray

    @classmethod
    def of(cls, conn: np.ndarray, ep: np.ndarray, keys: np.ndarray, hist: np.ndarray,
           slots: np.ndarray) -> EndedRows:
        """The rows of the flows in ``slots``, in that order."""
        return cls(conn[slots], ep[endpoint_rows(slots)],
                   keys[slots], hist[slots])

    @classmethod
    def concat(cls, parts: list[EndedRows]) -> EndedRows:
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts])
                     for f in fields(cls)))

    def __len__(self) -> int:
        return len(self.conn)

    def records(self) -> FlowRecords:
        return extract(self.conn, self.ep, self.keys, self.hist,
                       np.arange(len(self.conn), dtype=np.int64))


def _parents(c: np.ndarray) -> np.ndarray:
    """The tunnel parent ids of each flow, -1 after the last."""
    ids = c[:, C_PARENTS:C_PARENTS + MAX_PARENTS].copy()
    ids[np.arange(MAX_PARENTS) >= c[:, C_NPARENTS, None]] = -1
    return ids


__all__ = ["END_REASONS", "ORIG_REASONS", "EndedRows", "FlowRecords", "endpoint_rows",
           "extract"]
