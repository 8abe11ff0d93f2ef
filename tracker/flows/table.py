"""FlowTable: streaming socket-pair flows with Zeek's states, timers and reuse.

>>> table = FlowTable(FlowOptions())                       # doctest: +SKIP
>>> for frames in reader:                                   # doctest: +SKIP
...     ended = table.update(decode(frames))                # flows that ended
...     ids = table.flow_ids                                # flow of every packet row
>>> rest = table.flush()                                    # doctest: +SKIP

Python prepares each batch with numpy (eligible rows, keys, one int64 column
block) and runs the compiled walk (packet_loop.py). Memory follows the open flows:
ended flows leave the state arrays at the end of each call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tracker.decode.tunnels import Decapsulator
from tracker.errors import OptionError
from tracker.flows import layout as L
from tracker.flows.fragments import Reassembler, fragments
from tracker.flows.key import flow_keys
from tracker.flows.options import FlowOptions
from tracker.flows.packet_loop import run_batch, run_timers
from tracker.flows.records import END_REASONS, EndedRows, FlowRecords, endpoint_rows, extract
from tracker.flows.store import HEAP_ORDER, ht_contains, ht_rebuild
from tracker.flows.timers import live_entries
from tracker.frames import FrameBatch
from tracker.packets import (
    CHECKSUM_BAD,
    CHECKSUM_BAD_IP,
    CHECKSUM_UNCHECKED,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    UDP_HEADER,
    PacketBatch,
    Status,
    udp_length_short,
)


def _options_array(o: FlowOptions) -> np.ndarray:
    opt = np.zeros(L.O_N, dtype=np.int64)
    for col, name in ((L.O_TCP_INACT, "tcp_inactivity"), (L.O_UDP_INACT, "udp_inactivity"),
                      (L.O_ICMP_INACT, "icmp_inactivity"), (L.O_OTHER_INACT, "other_inactivity"),
                      (L.O_ATTEMPT, "tcp_attempt_delay"), (L.O_CLOSE, "tcp_close_delay"),
                      (L.O_SYN_TO, "tcp_syn_timeout"), (L.O_SESSION, "tcp_session_timer"),
                      (L.O_LINGER, "tcp_connection_linger"), (L.O_LONG_INACT, "long_inactivity"),
                      (L.O_ACTIVE, "active_timeout"),
                      (L.O_DNS_SESSION, "dns_session_timeout")):
        opt[col] = o.ns(name)
    opt[L.O_CAP] = -1 if o.max_open_flows is None else o.max_open_flows
    return opt


def _port_set(ports: frozenset[int]) -> np.ndarray:
    out = np.zeros(65536, dtype=np.bool_)
    out[list(ports)] = True
    return out


TCP_FIXED_HEADER = 20  # RFC 9293 3.1: the header without options
IPV6_NO_NEXT_HEADER = 59  # RFC 8200 section 4.7: nothing follows; Zeek makes no flow of it


def eligible(pb: PacketBatch) -> np.ndarray:
    """Rows that belong in a flow: OK IP packets whose transport header is whole (not
    IPv6's "no next header", which Zeek drops with weird ipv6_no_next)."""
    ok = (pb.status == Status.OK) & (pb.ip_version > 0) & (pb.proto >= 0)
    ok &= (pb.proto != IPV6_NO_NEXT_HEADER) | (pb.ip_version != 6)
    tcp_ok = (pb.proto != PROTO_TCP) | (pb.tcp_hdr_len >= 20)
    udp_ok = (pb.proto != PROTO_UDP) | (pb.src_port >= 0)
    icmp = (pb.proto == PROTO_ICMP) | (pb.proto == PROTO_ICMPV6)
    return ok & tcp_ok & udp_ok & (~icmp | (pb.icmp_type >= 0))


def tcp_header_cut(pb: PacketBatch) -> np.ndarray:
    """TCP rows whose fixed 20-byte header was captured but not the whole header (options
    cut by the snaplen), whose data offset is nonsense, or under an IPv6 payload length of
    0 (decode/ip.py tcp_without_length). Zeek makes or finds their
    connection, which needs only the fixed header, and then counts nothing: no packet, no
    history letter (ZEEK-FACTS 4.1, TCP.cc L86-90). Not a fragment, and not a packet
    whose IP length runs past the frame on the wire (Zeek drops that before any
    connection, IP.cc L81-84)."""
    trouble = (pb.status == Status.TRUNCATED) | (pb.status == Status.MALFORMED)
    tcp = trouble & (pb.proto == PROTO_TCP) & (pb.src_port >= 0) & (pb.ip_version > 0)
    if not tcp.any():
        return tcp
    fixed = pb.ip_caplen >= pb.ip_hdr_len + TCP_FIXED_HEADER
    return tcp & fixed & whole_on_wire(pb) & (pb.ip_hdr_len > 0)


def udp_short(pb: PacketBatch) -> np.ndarray:
    """UDP rows with a length field under 8 (packets.udp_length_short) that Zeek delivers
    as datagrams: not a fragment, nor a packet whose IP length runs past the frame on the
    wire (as tcp_header_cut's)."""
    short = udp_length_short(pb)
    return short & whole_on_wire(pb) if short.any() else short


def whole_on_wire(pb: PacketBatch) -> np.ndarray:
    """Rows of a whole IP datagram (not a fragment) whose IP length fits in the frame as
    sent (Zeek drops the others before any connection, IP.cc L81-84)."""
    l3_in_frame = pb.caplen - pb.ip_caplen
    on_wire = pb.ip_len <= pb.wire_len - l3_in_frame
    return on_wire & (pb.frag_offset == 0) & ~pb.more_fragments


# Packet times past this (2189-06-23) count as this: the kernel adds timeouts of up to
# MAX_SECONDS (FlowOptions) to packet times, and int64 nanoseconds must not overflow.
# Real captures are far from it; fuzzed or corrupt ones reach 2262 (a fuzz find).
TS_MAX = np.iinfo(np.int64).max - (1 << 61)


def packet_columns(pb: PacketBatch, good: np.ndarray, qr: np.ndarray, mode: np.ndarray,
                   vlan_in_key: bool,
                   tunnels: tuple[np.ndarray | int, np.ndarray | int] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(keys (n, 5) uint64, inputs (P_N, n) int64: one contiguous row per column).

    ``tunnels``: the P_CARRIER and P_TUNNEL columns (FlowTable._tunnel_columns); None
    leaves them and P_ENCAP unwritten, for a table that has seen no tunnel yet."""
    kb = flow_keys(pb, vlan_in_key)
    pi = np.empty((L.P_N, len(pb)), dtype=np.int64)
    payload = np.maximum(pb.payload_len, 0)
    icmp_len = pb.ip_len - pb.ip_hdr_len - 8  # ICMP.cc: bytes after the 8-byte header
    length = np.select([pb.proto == PROTO_TCP, pb.proto == PROTO_UDP,
                        (pb.proto == PROTO_ICMP) | (pb.proto == PROTO_ICMPV6)],
                       [payload, np.where(pb.udp_len >= 0, pb.udp_len.astype(np.int64) - UDP_HEADER, 0),
                        np.maximum(icmp_len, 0)], 0)
    for col, values in ((L.P_TS, np.minimum(pb.ts_ns, TS_MAX)), (L.P_PROTO, pb.proto), (L.P_SPORT, kb.sport),
                        (L.P_DPORT, kb.dport), (L.P_FLAGS, pb.tcp_flags), (L.P_SEQ, pb.seq),
                        (L.P_ACK, pb.ack), (L.P_WIN, pb.window), (L.P_LEN, length),
                        (L.P_PAYLOAD, payload), (L.P_IP_LEN, np.maximum(pb.ip_len, 0)),
                        (L.P_WIRE, pb.wire_len), (L.P_VLAN, pb.vlan), (L.P_GOOD, good),
                        (L.P_BCAST, kb.dst_is_broadcast), (L.P_SRC_A, kb.src_is_a),
                        (L.P_DNS_QR, qr), (L.P_NTP_MODE, mode)):
        pi[col] = values
    if tunnels is not None:  # else the walk never reads these rows (G_TUNNELS is 0)
        pi[L.P_CARRIER], pi[L.P_TUNNEL] = tunnels
        pi[L.P_ENCAP] = pb.encap.view(np.int64)
        # set at the tunnel depth limit only, so only in a batch with tunnels
        pi[L.P_FLAGS] |= pb.tunnel_refused * L.TUNNEL_REFUSED
    # A TCP payload not captured whole never reaches Zeek's reassembler (ZEEK-FACTS 8.2);
    # it is the end of the IP packet, so the packet's own cut says it (the flag bit is read
    # for TCP only).
    flags = pi[L.P_FLAGS]  # a view: one row of pi
    flags |= (pb.ip_caplen < pb.ip_len) * L.TCP_PAYLOAD_CUT
    return np.ascontiguousarray(kb.words), pi


NO_TICK = np.zeros(0, dtype=np.bool_)
# The globals a table's open state carries on (pickling, flush).
CARRIED_GLOBALS = (L.G_NT, L.G_NT_SET, L.G_NEXT_ID, L.G_HEAP_SEQ, L.G_EVICTED, L.G_TUNNELS,
                   L.G_ROW_BASE, L.G_ROW_IDS)


@dataclass
class KeySet:
    """A frozen copy of a table's 5-tuple index (FlowTable.key_set)."""

    table: np.ndarray
    keys: np.ndarray

    def contains(self, words: np.ndarray) -> np.ndarray:
        """For each row of 5 key words (uint64, or int64 viewing them): in the set?"""
        out = np.zeros(len(words), dtype=np.bool_)
        if len(words):
            ht_contains(self.table, self.keys,
                        np.ascontiguousarray(words).view(np.uint64), out)
        return out


@dataclass
class KernelBatch:
    """A batch ready for the compiled walk: packet_columns of its eligible rows.

    Attributes:
        pk, pi: packet_columns' keys and inputs, one column per eligible row.
        rows: for each of those, its row in ``positions``.
        positions: for each row the table saw (after reassembly), its row in the batch
            as given (-1: a datagram completed from earlier batches' fragments).
        n: the rows of the batch as given.
        newest: its newest packet time (None: empty), for the fragment clock.
    """

    pk: np.ndarray
    pi: np.ndarray
    rows: np.ndarray
    positions: np.ndarray
    n: int
    newest: int | None = None

    def packed(self) -> PackedBatch:
        """This batch with its int64 columns narrowed (narrow): 56 -> 26 MB for a file of
        250,000 packets, for batches that wait (a cluster's prepared files)."""
        return PackedBatch(self.pk, narrow(self.pi.T), narrow(self.rows[:, None])[0],
                           narrow(self.positions[:, None])[0], self.n, self.newest)


@dataclass
class PackedBatch:
    """A KernelBatch with its columns narrowed (KernelBatch.packed); ``unpacked`` gives
    the batch back as the walk takes it."""

    pk: np.ndarray
    pi: list[np.ndarray]
    rows: np.ndarray
    positions: np.ndarray
    n: int
    newest: int | None

    def unpacked(self) -> KernelBatch:
        pi = np.empty((len(self.pi), len(self.rows)), dtype=np.int64)
        for i, col in enumerate(self.pi):
            pi[i] = col
        return KernelBatch(self.pk, pi, self.rows.astype(np.int64),
                           self.positions.astype(np.int64), self.n, self.newest)


def ip_accepted(pb: PacketBatch, options: FlowOptions) -> tuple[PacketBatch, np.ndarray | None]:
    """(the rows that go on to reassembly, their positions in pb or None for all).

    A bad IPv4 header checksum drops the packet before anything, even before reassembly:
    no flow, no counts, no history letter (ZEEK-FACTS 9.1); so does an IPv4 total length
    of 0 (TSO), which Zeek accepts only with -C (9.2)."""
    if not options.verify_checksums:
        return pb, None
    bad_ip = (pb.checksum == CHECKSUM_BAD_IP) | ((pb.ip_version == 4) & (pb.ip_len == 0))
    if not bad_ip.any():
        return pb, None
    kept = np.flatnonzero(~bad_ip)
    return pb.take(kept), kept


def checksum_good(rows: PacketBatch, options: FlowOptions) -> np.ndarray:
    """Checksum verdict per eligible row (True when checksums are not verified).

    A reassembled datagram counts as good: its fragments' checksums cover only the
    pieces (the decoder judges OK rows only).
    """
    if not options.verify_checksums:
        return np.ones(len(rows), dtype=np.bool_)
    if (rows.checksum == CHECKSUM_UNCHECKED).any():
        raise OptionError("FlowOptions(verify_checksums=True) needs packets decoded with "
                          "checksums (decode(frames), not decode(frames, checksums=False))")
    return rows.checksum != CHECKSUM_BAD


TunnelColumns = tuple[np.ndarray | int, np.ndarray | int] | None


def kernel_batch(packets: PacketBatch, positions: np.ndarray, n: int, options: FlowOptions,
                 tunnel_columns: Callable[[PacketBatch], TunnelColumns]) -> KernelBatch:
    """The walk's input for the rows the table sees (after reassembly); ``tunnel_columns``
    gives P_CARRIER and P_TUNNEL of the chosen rows (FlowTable._tunnel_columns)."""
    cut = tcp_header_cut(packets)
    rows = np.flatnonzero(eligible(packets) | cut | udp_short(packets))
    chosen = packets if len(rows) == len(packets) else packets.take(rows)
    good = checksum_good(chosen, options).astype(np.int8)
    good[cut[rows]] = L.GOOD_HEADER_CUT
    none = np.full(len(chosen), -1, np.int8)
    qr = chosen.dns_qr if options.dns_ports else none
    mode = chosen.ntp_mode if options.ntp_ports else none
    pk, pi = packet_columns(chosen, good, qr, mode, options.vlan_in_key,
                            tunnel_columns(chosen))
    return KernelBatch(pk, pi, rows, positions, n)


def prepare_batch(pb: PacketBatch, options: FlowOptions) -> KernelBatch | None:
    """The walk's input for a batch that needs nothing of a table's state: no fragment to
    reassemble and no tunnel to open (None otherwise: give it to ``update``). Any table
    with these options takes it (``update_prepared``), so it can be made ahead, elsewhere."""
    if (options.decapsulate and pb.tunnel_hint.any()) or fragments(pb).any():
        return None
    src, kept = ip_accepted(pb, options)
    positions = np.arange(len(pb), dtype=np.int64) if kept is None else kept
    kb = kernel_batch(src, positions, len(pb), options, lambda rows: (-1, -1))
    kb.newest = int(src.ts_ns.max()) if len(src) else None
    return kb


class FlowTable:
    """Open flows keyed by socket pair; ``update`` per batch, ``flush`` at the end.

    Attributes:
        earlier_flow_ids: (record numbers, flow ids) of fragments from EARLIER
            batches whose datagram completed in the last batch.
        flow_ids: int64 per row of the last batch given to ``update``: the flow
            of that packet, -1 for rows in no flow (not IP, malformed, ...).
        evicted: flows ended by the ``max_open_flows`` cap so far.
    """

    def __init__(self, options: FlowOptions | None = None, *, initial_slots: int = 65536) -> None:
        self.options = options or FlowOptions()
        self._opt = _options_array(self.options)
        self._lsp = np.stack([_port_set(self.options.likely_server_tcp),
                              _port_set(self.options.likely_server_udp),
                              _port_set(self.options.dns_ports),
                              _port_set(self.options.ntp_ports)])
        self._long = _port_set(self.options.long_inactivity_ports)
        self._reasm = Reassembler()
        self._ip_tunnels: dict[int, int] = {}  # IP tunnel key (PacketBatch.ip_tunnel) -> id
        self.tunnels = Decapsulator(self.options.likely_server_udp,
                                    self.options.verify_checksums)
        self.rows = PacketBatch.empty(0)
        self.row_flow_ids = np.zeros(0, dtype=np.int64)
        cap = self.options.max_open_flows
        if cap is not None:
            # Open flows never outnumber the cap, and _run grows the slots when fewer than a
            # quarter are free after collecting: 1.5 slots per allowed flow never grow.
            initial_slots = min(initial_slots, cap + cap // 2 + 16)
        self._alloc(max(16, initial_slots))
        self.flow_ids = np.zeros(0, dtype=np.int64)
        self.earlier_flow_ids = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        self.ends: list[np.ndarray] = []
        # With a list here, flows that end leave as their rows (collect_rows).
        self.ended_rows: list[EndedRows] | None = None

    def _alloc(self, n: int) -> None:
        self._conn = np.zeros((n, L.C_N), dtype=np.int64)
        self._ep = np.zeros((2 * n, L.E_N), dtype=np.int64)
        self._keys = np.zeros((n, 5), dtype=np.uint64)
        self._hist = np.zeros((n, L.HIST_MAX), dtype=np.uint8)
        self._free = np.arange(n - 1, -1, -1, dtype=np.int64)
        # Linear probing masks positions with size - 1: the size is a power of two.
        self._table = np.full(1 << (4 * n - 1).bit_length(), -1, dtype=np.int64)
        self._heap = np.zeros((2 * n, 4), dtype=np.int64)
        self._ended = np.zeros(n, dtype=np.int64)
        self._g = np.zeros(L.G_N, dtype=np.int64)
        self._g[L.G_FREE_N] = n
        self._g[L.G_LRU_HEAD] = self._g[L.G_LRU_TAIL] = -1

    def __getstate__(self) -> dict[str, Any]:
        """The open state only (the architecture's carried-state rule): the open flows'
        rows, their live timers, the pending fragments and the tunnel memory, so that a
        table pickled at the end of one part of a capture and loaded by the worker reading
        the next part goes on exactly as if it had read both (cluster.py). About 450 bytes per
        open flow."""
        return narrowed(self.open_state())

    def open_state(self) -> dict[str, Any]:
        """``__getstate__``'s dict with the rows as int64 blocks (not narrowed)."""
        slots = np.flatnonzero(self._conn[:, L.C_FLAGS] & L.F_OPEN)
        heap = self._heap[:int(self._g[L.G_HEAP_N])]
        heap = heap[live_entries(self._conn, heap)]
        return {"options": self.options, "slots": slots, "conn": self._conn[slots],
                "ep": self._ep[endpoint_rows(slots)],
                "keys": self._keys[slots], "hist": self._hist[slots], "heap": heap,
                "g": self._g.copy(), "reasm": self._reasm, "ip_tunnels": self._ip_tunnels,
                "tunnels": self.tunnels.memory()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        old = state["slots"]
        n = len(old)
        self.__init__(state["options"], initial_slots=max(16, 2 * n))  # type: ignore[misc]
        new = np.full(int(old.max()) + 1 if n else 1, -1, np.int64)  # old slot -> new
        new[old] = np.arange(n)
        conn, ep = self._conn[:n], self._ep[:2 * n]
        widen_into(conn, state["conn"])
        widen_into(ep, state["ep"])
        for col in (L.C_LRU_PREV, L.C_LRU_NEXT):  # the cap's LRU list, in new slots
            linked = conn[:, col] >= 0
            conn[linked, col] = new[conn[linked, col]]
        self._keys[:n], self._hist[:n] = state["keys"], state["hist"]
        heap = state["heap"].copy()
        heap[:, 2] = new[heap[:, 2]]
        heap = heap[heap_order(heap)]  # sorted: a valid heap
        self._heap[:len(heap)] = heap
        g = state["g"]
        for col in CARRIED_GLOBALS:
            self._g[col] = g[col]
        for col in (L.G_LRU_HEAD, L.G_LRU_TAIL):
            self._g[col] = new[g[col]] if g[col] >= 0 else -1
        self._g[L.G_OPEN] = n
        self._g[L.G_HEAP_N] = len(heap)
        self._free[:len(self._conn) - n] = np.arange(len(self._conn) - 1, n - 1, -1)
        self._g[L.G_FREE_N] = len(self._conn) - n
        ht_rebuild(self._table, self._keys, np.arange(n, dtype=np.int64), self._g)
        self._reasm = state["reasm"]
        self._ip_tunnels = state["ip_tunnels"]
        self.tunnels.restore(state["tunnels"])

    def number_rows(self) -> None:
        """Number the rows of a part of a capture from 0 and name a new flow by its
        first row (ROW_ID + row: after every counted id, so ids order flows by creation
        in two tables that walk the same rows), for a cluster read's stitch
        (flows/stitch.py, which renumbers them); each flow ended from now on leaves in
        ``ends`` (C_END_ROW, C_FIRED_T, its 5 key words) where it ended."""
        self._g[L.G_ROW_IDS] = 1
        self._g[L.G_ROW_BASE] = 0
        self.ends = []

    def collect_rows(self) -> None:
        """From now on each flow that ends leaves its rows in ``ended_rows``
        (EndedRows, in the order update would return them) and update returns none of
        it: a cluster's walk, which the next file waits for, copies the rows and the task
        after it makes the records (cluster.py). ``flush`` still returns records."""
        self.ended_rows = []

    def key_set(self) -> KeySet:
        """The 5-tuples of the flows open now, to test rows against later."""
        return KeySet(self._table.copy(), self._keys.copy())

    @property
    def waiting(self) -> bool:
        """Whether anything but open flows waits in the table: fragments of unfinished
        datagrams, or tunnels seen (their memory and the flows' stacks)."""
        return bool(self._reasm.pending().fragments or self._g[L.G_TUNNELS]
                    or self._ip_tunnels)

    @property
    def network_time(self) -> int | None:
        return int(self._g[L.G_NT]) if self._g[L.G_NT_SET] else None

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FlowTable:
        """A table from ``__getstate__``'s or ``open_state``'s dict (``joined_state``'s)."""
        table = cls.__new__(cls)
        table.__setstate__(state)
        return table

    @property
    def evicted(self) -> int:
        return int(self._g[L.G_EVICTED])

    @property
    def open_flows(self) -> int:
        return int(self._g[L.G_OPEN])

    def update(self, pb: PacketBatch, frames: FrameBatch | None = None) -> FlowRecords:
        """Process one batch in order; returns the flows that ended during it.

        ``self.flow_ids`` then holds the flow of every row of ``pb`` (-1: in no
        flow). With ``verify_checksums`` the batch must come from
        ``decode(frames)`` with its default ``checksums=True``; a batch decoded
        without them is an OptionError, never quietly other flows.

        With ``frames`` (the batch ``pb`` was decoded from) and ``decapsulate``, the
        tunnels are opened first (tracker/decode/tunnels.py): ``self.rows`` then holds
        the rows the flows were made of, outer and inner, and ``self.row_flow_ids``
        their flows; ``flow_ids`` gives each frame the flow of its outermost packet
        that makes one (an IP tunnel's: the packet inside).
        """
        rows = pb
        if frames is not None and self.options.decapsulate:
            rows = self.tunnels.rows(frames, pb)
        ended = self._update_rows(rows)
        self.rows, self.row_flow_ids = rows, self.flow_ids
        if len(rows) != len(pb):  # a frame's own row comes first, its tunnels' after it
            first = np.flatnonzero(np.r_[True, rows.record[1:] != rows.record[:-1]])
            self.flow_ids = self.row_flow_ids[first]
        return ended

    def _update_rows(self, pb: PacketBatch) -> FlowRecords:
        packets, positions, members = self._reassemble(pb)
        return self._walk(kernel_batch(packets, positions, len(pb), self.options,
                                       self._tunnel_columns), members)

    def update_prepared(self, kb: KernelBatch, pb: PacketBatch | None = None,
                        tick: np.ndarray = NO_TICK) -> FlowRecords:
        """``update`` for a batch made ready ahead by ``prepare_batch``: the same flows
        and ``flow_ids``, with the state-free work already done elsewhere (a second thread,
        pipeline.py; a cluster's prepare task, cluster.py). ``rows`` is ``pb``, the batch
        it was made from (it has no tunnel), or empty without it. Rows where ``tick``
        (bool per row of ``kb.pk``) is set only move time on: timers fire as they would
        have, and the packet joins no flow (a cluster's stitch replays a few flows)."""
        self._reasm.tick(kb.newest)
        ended = self._walk(kb, None, tick)
        self.rows = pb if pb is not None else PacketBatch.empty(0)
        self.row_flow_ids = self.flow_ids if pb is not None else np.zeros(0, dtype=np.int64)
        return ended

    def _walk(self, kb: KernelBatch, members: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
              tick: np.ndarray = NO_TICK) -> FlowRecords:
        """Run the kernel over the batch; set flow_ids (fragment ``members`` included)."""
        fids = np.full(len(kb.rows), -1, dtype=np.int64)
        parts = self._run(kb.pk, kb.pi, fids, tick)
        self._g[L.G_ROW_BASE] += len(kb.rows)
        self.flow_ids = np.full(kb.n, -1, dtype=np.int64)
        out_fid = np.full(len(kb.positions), -1, dtype=np.int64)
        out_fid[kb.rows] = fids
        ok = kb.positions >= 0
        self.flow_ids[kb.positions[ok]] = out_fid[ok]
        self.earlier_flow_ids = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        if members is not None:  # every fragment of a completed datagram joins its flow
            pos, of, records = members
            here = pos >= 0
            self.flow_ids[pos[here]] = out_fid[of[here]]
            self.earlier_flow_ids = (records[~here], out_fid[of[~here]])
        return FlowRecords.concat(parts)

    def _tunnel_columns(self, rows: PacketBatch
                        ) -> tuple[np.ndarray | int, np.ndarray | int] | None:
        """(P_CARRIER, P_TUNNEL) of the rows: the row carrying each packet in a UDP
        tunnel (its record and depth name it), and the id of its IP tunnel (-1: none, the
        value of every row of an untunnelled batch); None while no tunnel was ever seen.
        An IP tunnel takes the next flow id when first seen: ids of flows and tunnels
        never clash."""
        if not rows.depth.any():
            return (-1, -1) if self._g[L.G_TUNNELS] else None
        self._g[L.G_TUNNELS] = 1  # from now on the walk compares tunnel stacks
        n = len(rows)
        carrier, tunnel = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
        inner = np.flatnonzero(rows.carrier_depth >= 0)
        carrier[inner] = carriers(rows, inner)
        in_ip = np.flatnonzero(rows.ip_tunnel)
        keys, which = np.unique(rows.ip_tunnel[in_ip], return_inverse=True)
        ids = np.empty(len(keys), np.int64)
        for k, key in enumerate(keys.tolist()):  # a Python step per tunnel, not per packet
            if key not in self._ip_tunnels:
                self._ip_tunnels[key] = int(self._g[L.G_NEXT_ID])
                self._g[L.G_NEXT_ID] += 1
            ids[k] = self._ip_tunnels[key]
        tunnel[in_ip] = ids[which]
        return carrier, tunnel

    def _reassemble(self, pb: PacketBatch
                    ) -> tuple[PacketBatch, np.ndarray,
                               tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
        """Rows for the flow table, their positions in pb (-1: none), and fragment members
        (position in pb or -1 for an earlier batch, datagram row, record number)."""
        src, kept = ip_accepted(pb, self.options)
        r = self._reasm.push(src)
        if r.packets is src:  # no fragments in this batch: rows are the input rows
            return src, np.arange(len(pb), dtype=np.int64) if kept is None else kept, None
        assert r.index is not None  # rows other than the batch's own
        positions = r.index if kept is None else kept[r.index]
        records = np.asarray(r.member_records, dtype=np.int64)
        mpos = row_positions(pb.record, records)
        return r.packets, positions, (mpos, np.asarray(r.member_of), records)

    def _run(self, pk: np.ndarray, pi: np.ndarray, fids: np.ndarray,
             tick: np.ndarray = NO_TICK) -> list[FlowRecords]:
        """Call the kernel until the batch is done, growing and collecting in between."""
        parts: list[FlowRecords] = []
        pos = 0
        while True:
            status, pos = run_batch(pk, pi, fids, pos, self._conn, self._ep, self._keys,
                                    self._hist, self._table, self._heap, self._free,
                                    self._ended, self._g, self._opt, self._lsp, self._long,
                                    tick)
            if self._g[L.G_ENDED_N]:
                parts.append(self._collect())
            if status == L.DONE:
                return parts
            if status == L.NEED_SLOTS and self._g[L.G_FREE_N] < len(self._conn) // 4:
                self._grow_slots()  # collecting the ended flows did not free enough
            elif status == L.NEED_HASH:
                self._grow_hash()
            elif status == L.NEED_HEAP:
                self._grow_heap()
            elif status == L.NEED_ENDED and self._g[L.G_ENDED_N] == 0:
                self._ended = np.zeros(2 * len(self._ended), dtype=np.int64)

    def _collect(self) -> FlowRecords:
        """Records of the ended flows; their slots become free."""
        n = int(self._g[L.G_ENDED_N])
        slots = self._ended[:n].copy()
        if self.ended_rows is None:
            records = extract(self._conn, self._ep, self._keys, self._hist, slots)
        else:
            self.ended_rows.append(EndedRows.of(self._conn, self._ep, self._keys, self._hist,
                                                slots))
            records = FlowRecords.empty()
        if self._g[L.G_ROW_IDS]:
            self.ends.append(np.column_stack([self._conn[slots, L.C_END_ROW],
                                              self._conn[slots, L.C_FIRED_T],
                                              self._keys[slots].view(np.int64)]))
        self._hist[slots] = 0
        f = int(self._g[L.G_FREE_N])
        self._free[f:f + n] = slots
        self._g[L.G_FREE_N] = f + n
        self._g[L.G_ENDED_N] = 0
        return records

    def _grow_slots(self) -> None:
        """Double the slot arrays (np.zeros maps pages lazily, so only the copy costs)."""
        old = len(self._conn)
        new = 2 * old
        for name in ("_conn", "_ep", "_keys", "_hist"):
            arr = getattr(self, name)
            grown = np.zeros((2 * len(arr), arr.shape[1]), dtype=arr.dtype)
            grown[:len(arr)] = arr
            setattr(self, name, grown)
        free = np.zeros(new, dtype=np.int64)
        f = int(self._g[L.G_FREE_N])
        free[:f] = self._free[:f]
        free[f:f + old] = np.arange(new - 1, old - 1, -1)
        self._free = free
        self._g[L.G_FREE_N] = f + old
        self._ended = np.zeros(new, dtype=np.int64)  # empty: _run collects before growing

    def _grow_hash(self) -> None:
        table = np.full(2 * len(self._table), -1, dtype=np.int64)
        ht_rebuild(table, self._keys, self._table[self._table >= 0], self._g)
        self._table = table

    def _grow_heap(self) -> None:
        """Drop superseded wake-ups; double the heap if it is still over half full."""
        n = int(self._g[L.G_HEAP_N])
        rows = self._heap[:n][live_entries(self._conn, self._heap[:n])]
        rows = rows[heap_order(rows)]  # sorted = a heap
        cap = len(self._heap) * (2 if 2 * len(rows) > len(self._heap) else 1)
        self._heap = np.zeros((cap, 4), dtype=np.int64)
        self._heap[:len(rows)] = rows
        self._g[L.G_HEAP_N] = len(rows)

    def expire(self, now_ns: int) -> FlowRecords:
        """Let time pass to ``now_ns`` without a packet (a live capture's wall clock).

        Timers due by then fire as they would before a packet at that time;
        returns the flows they ended. Time never moves back.
        """
        parts: list[FlowRecords] = []
        while True:
            status = run_timers(int(now_ns), self._conn, self._ep, self._keys, self._table,
                                self._heap, self._ended, self._g, self._opt)
            if self._g[L.G_ENDED_N]:
                parts.append(self._collect())
            if status == L.DONE:
                return FlowRecords.concat(parts)

    def peek(self) -> FlowRecords:
        """The flows open now, with their counts and states so far (end_reason ``open``).

        Nothing changes in the table: a live capture's snapshot.
        """
        slots = np.flatnonzero(self._conn[:, L.C_FLAGS] & L.F_OPEN)
        records = extract(self._conn, self._ep, self._keys, self._hist, slots)
        records.end_reason[:] = END_REASONS.index("open")
        return records

    def flush(self, reason: str = "eof") -> FlowRecords:
        """End every open flow: ``eof`` at the end of a capture, ``stopped`` when a live
        capture stops, ``interrupted`` on Ctrl-C, ``error`` at a corrupt record.

        As at the end of a Zeek run, flows whose lone-SYN attempt timer is
        pending come first, in timer order, then the others by flow id.
        """
        if reason not in END_REASONS or reason == "open":
            raise ValueError(f"flush reason must be one of {END_REASONS[:-1]}, got {reason!r}")
        c = self._conn
        slots = np.flatnonzero(c[:, L.C_FLAGS] & L.F_OPEN)
        attempt = (c[slots, L.C_FLAGS] & L.F_ATTEMPT) != 0
        order = np.lexsort((c[slots, L.C_FLOW_ID], np.where(attempt, c[slots, L.C_ATTEMPT_T],
                                                            np.iinfo(np.int64).max)))
        slots = slots[order]
        c[slots, L.C_END_REASON] = END_REASONS.index(reason)
        c[slots, L.C_END_TS] = self._g[L.G_NT]
        c[slots, L.C_FLAGS] &= ~L.F_OPEN
        records = extract(self._conn, self._ep, self._keys, self._hist, slots)
        g = self._g.copy()
        self._alloc(len(self._conn))
        for col in CARRIED_GLOBALS:
            self._g[col] = g[col]
        return records


def restricted(state: dict[str, Any], keep: np.ndarray) -> dict[str, Any]:
    """``open_state``'s dict with only the open flows where ``keep`` (per flow)."""
    slots = state["slots"][keep]
    heap = state["heap"]
    out = dict(state)
    out.update(slots=slots, conn=state["conn"][keep], ep=state["ep"][np.repeat(keep, 2)],
               keys=state["keys"][keep], hist=state["hist"][keep],
               heap=heap[np.isin(heap[:, 2], slots)])
    return out


def joined_state(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """The open state of two tables that walked the same rows of a capture for flows of
    different 5-tuples (a cluster read's stitch), as one table's (``open_state``'s
    dicts): ``first``'s globals, fragments and tunnel memory, both tables' flows and
    timers (ordered by due time and flow id, which both tables number alike:
    number_rows)."""
    offset = int(first["slots"].max()) + 1 if len(first["slots"]) else 0
    heap2 = second["heap"].copy()
    heap2[:, 2] += offset
    g = first["g"].copy()
    g[L.G_HEAP_SEQ] = max(g[L.G_HEAP_SEQ], second["g"][L.G_HEAP_SEQ])
    out = dict(first)
    out.update({"slots": np.concatenate([first["slots"], second["slots"] + offset]),
                "heap": np.concatenate([first["heap"], heap2]), "g": g},
               **{name: np.concatenate([first[name], second[name]])
                  for name in ("conn", "ep", "keys", "hist")})
    return out


def narrowed(state: dict[str, Any]) -> dict[str, Any]:
    """``open_state``'s dict as pickled: the flow and endpoint rows narrowed."""
    return {**state, "conn": narrow(state["conn"]), "ep": narrow(state["ep"])}


def heap_order(heap: np.ndarray) -> np.ndarray:
    """The order that sorts heap rows as the heap orders them (a sorted array is a heap)."""
    return np.lexsort(tuple(heap[:, j] for j in reversed(HEAP_ORDER)))


_NARROW = {t: (int(np.iinfo(t).min), int(np.iinfo(t).max))
           for t in (np.int8, np.int16, np.int32, np.int64)}


def narrow(block: np.ndarray) -> list[np.ndarray]:
    """The columns of an int64 block, each in the smallest integer type that holds it.

    The open state crosses the network at every file boundary of a cluster read, and most
    columns of a flow's row are flags, states and small counts: this makes it 3x smaller
    (benchmarks/RESULTS.md)."""
    columns = np.ascontiguousarray(block.T)
    if not len(block):
        return list(columns)
    lows, highs = columns.min(axis=1).tolist(), columns.max(axis=1).tolist()
    kinds = [next(t for t in _NARROW if _NARROW[t][0] <= lo and hi <= _NARROW[t][1])
             for lo, hi in zip(lows, highs)]
    return [col.astype(kind) for col, kind in zip(columns, kinds)]


def widen_into(out: np.ndarray, block: np.ndarray | list[np.ndarray]) -> None:
    """Write an int64 block, or narrow's columns of one, into ``out`` (rows, columns):
    column by column, without the int64 block in between (from_state: 12 -> 9 ms for
    11,000 open flows)."""
    if isinstance(block, np.ndarray):
        out[:] = block
        return
    for i, col in enumerate(block):
        out[:, i] = col


def carriers(rows: PacketBatch, inner: np.ndarray) -> np.ndarray:
    """The row that carries each of the ``inner`` rows in its UDP tunnel: the nearest
    row before it of its frame at its carrier's depth (the packets inside a tunnel
    follow the row that carries them: decode/tunnels.py), -1 if none. By position, not
    by frame and depth alone: one frame may have several rows at a depth (an 802.11
    A-MSDU's packets)."""
    out = np.full(inner.size, -1, np.int64)
    for depth in np.unique(rows.carrier_depth[inner]).tolist():
        mine = np.flatnonzero(rows.carrier_depth[inner] == depth)
        at = np.flatnonzero(rows.depth == depth)
        k = np.searchsorted(at, inner[mine]) - 1
        found = at[np.maximum(k, 0)] if at.size else np.zeros(mine.size, np.int64)
        same = (k >= 0) & (rows.record[found] == rows.record[inner[mine]])
        out[mine] = np.where(same, found, -1)
    return out


def row_positions(record: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Position of each wanted record number in ``record`` (sorted), -1 if absent."""
    wanted = np.asarray(wanted, dtype=np.int64)
    if len(record) == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(record, wanted), len(record) - 1)
    return np.where(record[pos] == wanted, pos, -1)
