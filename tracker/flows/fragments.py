"""IP fragment accounting: one packet per reassembled datagram, as Zeek counts it.

docs/flow-record.md section 1 and Zeek's ``Frag.cc`` and ``IP.cc`` give the rules; in short:

- Fragments (rows with ``Status.FRAGMENT``, and first fragments that the decoder
  marked MALFORMED or TRUNCATED for their transport header: Zeek reassembles
  before it reads that header) are grouped by (src, dst, protocol, IP id).
  RFC 791 section 3.2 names these four fields; Zeek keys on (src, dst, id) only
  (``Frag.cc``), so two IPv4 datagrams that differ only in protocol are one set
  for Zeek and two for us. IPv6 fragments are keyed by (src, dst, id), as Zeek
  keys them: the decoder's protocol of a first fragment is its transport
  header's, past any extension headers that follow the Fragment header, and a
  later fragment's is the Fragment header's Next Header (RFC 8200 section 4.5),
  which differ when such headers are there (``_key_proto``).
- A set completes when its data covers ``[0, end)`` without a hole, ``end``
  being set by the last fragment (MF=0) and raised by any fragment that reaches
  beyond it (Zeek ``FragReassembler::AddFragment`` / ``BlockInserted``).
  Overlaps are allowed. The datagram becomes ONE row, at the position and with
  the timestamp of the fragment that completes it, whatever the arrival order.
  A fragment that arrives after completion starts a new set (Zeek deletes the
  reassembler once the datagram is processed).
- Until then nothing of the set reaches the flow table. A set still incomplete
  ``frag_timeout`` (5 min of packet time) after its first fragment is dropped;
  so is the oldest set when the pending caps are exceeded. Both are counted.
- A fragment that is not fully captured (snaplen) is never reassembled: at
  offset 0 it passes on its own as an ordinary packet, otherwise it is dropped
  (Zeek ``IP.cc``, weird ``incompletely_captured_fragment``).
- A datagram longer than 65,535 bytes (fragments reaching past what the 16-bit
  length field can say) gets the length Zeek writes into its header, which wraps
  (``Frag.cc`` stores ``htons(total)``, IPv6 ``htons(total - 40)``), and is read to
  that length only; when that cannot hold its IP and transport headers it is dropped
  (weird ``invalid_IP_header_size`` in ``IP.cc``) and counted as ``oversized``.

Row conventions of the decoder (tracker/decode): for a later fragment
``ip_hdr_len`` is where its data starts (IPv4 IHL*4; IPv6 40 plus the
extension headers up to and including the Fragment header, where Zeek's IPv6
header chain stops too); the offset-0 fragment carries the transport fields,
its ``l4_offset`` pointing at the transport header (see ``_data_start``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from tracker.errors import OptionError
from tracker.frames import NAT_NS
from tracker.jit import compiled
from tracker.packets import (
    FRAG_TIMEOUT_NS,
    MAX_PENDING_DATAGRAMS,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    UDP_HEADER,
    PacketBatch,
    Status,
    fragments,
    wrapped_ip_length,
)

# 64 MiB is 16 times Linux's ipfrag_high_thresh default (4 MiB, ip-sysctl.rst),
# generous because one capture holds the fragments of many hosts at once.
MAX_PENDING_BYTES = 64 * 2**20
IPV4_MIN_HEADER = 20  # RFC 791: IHL >= 5
IPV6_FRAGMENT_DATA_MIN = 48  # RFC 8200: 40-byte header + 8-byte Fragment header
IPV6_FRAGMENT_HEADER_LEN = 8  # RFC 8200 section 4.5
ICMP_HEADER_LEN = 8  # RFC 792 / RFC 4443: type, code, checksum and 4 more bytes


@dataclass(slots=True)
class Reassembled:
    """What one ``Reassembler.push`` gives the flow table.

    Attributes:
        packets: the rows to process, in order: non-fragment rows unchanged,
            one row per datagram completed in this push (at the position of its
            completing fragment), and first fragments cut by the snaplen.
        row: for each row of ``packets``, the record number of the input frame
            it stands for (the completing fragment for a datagram).
        index: for each row of ``packets``, its position in the batch pushed (a frame
            may have several rows: its tunnels', an 802.11 A-MSDU's packets); None when
            ``packets`` is that batch itself.
        member_records: record numbers of every fragment of the datagrams
            completed in this push, including fragments of earlier pushes.
        member_of: for each of ``member_records``, the index into ``packets`` of
            its datagram row, so that every fragment can get the flow's id.
    """

    packets: PacketBatch
    row: np.ndarray
    index: np.ndarray | None
    member_records: np.ndarray
    member_of: np.ndarray


@dataclass(frozen=True, slots=True)
class PendingFragments:
    """Incomplete datagrams waiting for more fragments (counted in no flow)."""

    datagrams: int
    fragments: int
    bytes: int  # sum of the fragments' IP lengths


@dataclass(slots=True)
class FragmentStats:
    """Running counts for the run summary."""

    fragments: int = 0  # fragment rows pushed
    datagrams: int = 0  # datagrams completed, one packet each
    fragments_completed: int = 0  # fragments inside completed datagrams
    truncated_first: int = 0  # offset-0 fragments cut by the snaplen, counted alone
    truncated_dropped: int = 0  # later fragments cut by the snaplen, dropped
    malformed: int = 0  # IP length shorter than the header: dropped
    oversized: int = 0  # datagrams over 65,535 bytes: their length wraps (module docstring)
    expired_datagrams: int = 0  # incomplete sets dropped after frag_timeout
    expired_fragments: int = 0
    evicted_datagrams: int = 0  # incomplete sets dropped by the pending caps
    evicted_fragments: int = 0
    pending_datagrams: int = 0  # still incomplete now (filled in by stats())
    pending_fragments: int = 0


class Reassembler:
    """Stateful fragment accounting across batches; see the module docstring.

    >>> r = Reassembler()
    >>> out = r.push(PacketBatch.empty(3))  # no fragments: the same batch back
    >>> len(out.packets), r.pending().datagrams
    (3, 0)
    """

    def __init__(
        self,
        *,
        frag_timeout_ns: int = FRAG_TIMEOUT_NS,
        max_datagrams: int = MAX_PENDING_DATAGRAMS,
        max_bytes: int = MAX_PENDING_BYTES,
    ) -> None:
        for name, value in (("frag_timeout_ns", frag_timeout_ns),
                            ("max_datagrams", max_datagrams), ("max_bytes", max_bytes)):
            if int(value) <= 0:
                raise OptionError(f"Reassembler: {name} must be positive, got {value!r}")
        self.frag_timeout_ns = int(frag_timeout_ns)
        self.max_datagrams = int(max_datagrams)
        self.max_bytes = int(max_bytes)
        self._stats = FragmentStats()
        self._clock = int(NAT_NS)  # newest packet time seen (Zeek's network_time)
        self._seq = 0  # arrival number of the next candidate fragment
        # Fragments of incomplete sets, sorted by key then arrival, one set per key.
        self._pend = PacketBatch.empty(0)
        self._pend_arrival = np.zeros(0, np.int64)
        self._pend_now = np.zeros(0, np.int64)  # packet time when each arrived
        self._pend_set = np.zeros(0, np.int64)  # set number, 0..k-1
        self._pend_start = np.zeros(0, np.int64)  # packet time of the set's start

    def pending(self) -> PendingFragments:
        """Incomplete datagrams held now; none of them is counted in any flow."""
        n_sets = int(self._pend_set[-1]) + 1 if len(self._pend_set) else 0
        return PendingFragments(n_sets, len(self._pend), int(self._pend.ip_len.sum()))

    def stats(self) -> FragmentStats:
        """A copy of the running counts, with the pending ones filled in."""
        p = self.pending()
        values = {f.name: getattr(self._stats, f.name) for f in fields(FragmentStats)}
        values.update(pending_datagrams=p.datagrams, pending_fragments=p.fragments)
        return FragmentStats(**values)

    def push(self, pb: PacketBatch) -> Reassembled:
        """Account the fragments of ``pb``; see ``Reassembled`` for the result."""
        clock_before = self._clock
        is_frag = fragments(pb)
        if not is_frag.any():  # the common case: no copy, almost no work
            self.tick(int(pb.ts_ns.max()) if len(pb) else None)
            return Reassembled(pb, pb.record, None, np.zeros(0, np.int64), np.zeros(0, np.int64))
        self._clock = max(self._clock, int(pb.ts_ns.max()))
        return self._push_fragments(pb, _fragment_rows(pb, is_frag), clock_before)

    def tick(self, newest_ns: int | None) -> None:
        """A batch without fragments whose newest packet time is ``newest_ns`` (None: an
        empty batch) went by: the clock moves on and pending sets may time out."""
        if newest_ns is not None:
            self._clock = max(self._clock, newest_ns)
        if len(self._pend):
            self._expire_pending()

    def _push_fragments(self, pb: PacketBatch, is_frag: np.ndarray, clock: int) -> Reassembled:
        """The batch has fragments: run the sets, then build the output rows."""
        fi = np.flatnonzero(is_frag)
        now_new = np.maximum(np.maximum.accumulate(pb.ts_ns)[fi], clock)
        passed, cand = self._classify(pb, fi)
        work, pos, arrival, now = self._candidates(pb, fi[cand], now_new[cand])
        new_group = _new_group(work)
        data_start = _data_start(work, new_group)
        upper = work.frag_offset.astype(np.int64) + work.ip_len - data_start
        start = np.where(work.ts_ns == NAT_NS, now, work.ts_ns)
        set_id, done_at, size, expired = _assign_sets(
            new_group, work.frag_offset.astype(np.int64), upper, work.more_fragments,
            now, start, self.frag_timeout_ns)
        done = np.flatnonzero(done_at >= 0)
        dg = _datagram_rows(work, data_start, upper, set_id, done, done_at[done], size[done])
        self._stats.oversized += _wrap_length(dg)
        out, index, dest = _merge(pb, is_frag, fi[passed], pos[done_at[done]], dg)
        members = np.isin(set_id, done)
        self._stats.datagrams += len(done)
        self._stats.fragments_completed += int(members.sum())
        self._keep_pending(work, arrival, now, start, set_id, done_at, expired)
        return Reassembled(out, out.record, index, work.record[members],
                           dest[np.searchsorted(done, set_id[members])])

    def _classify(self, pb: PacketBatch, fi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Masks over ``fi``: first fragments passed alone, reassembly candidates."""
        hdr = pb.ip_hdr_len[fi].astype(np.int64)
        min_hdr = np.where(pb.ip_version[fi] == 6, IPV6_FRAGMENT_DATA_MIN, IPV4_MIN_HEADER)
        malformed = (hdr < min_hdr) | (pb.ip_len[fi] < hdr)
        full = pb.ip_caplen[fi] >= pb.ip_len[fi]  # the whole datagram is captured (Zeek IP.cc)
        first = pb.frag_offset[fi] == 0
        passed = ~malformed & ~full & first
        self._stats.fragments += len(fi)
        self._stats.malformed += int(malformed.sum())
        self._stats.truncated_first += int(passed.sum())
        self._stats.truncated_dropped += int((~malformed & ~full & ~first).sum())
        return passed, ~malformed & full

    def _candidates(
        self, pb: PacketBatch, idx: np.ndarray, now_new: np.ndarray
    ) -> tuple[PacketBatch, np.ndarray, np.ndarray, np.ndarray]:
        """Pending and new fragments, sorted by key then arrival.

        Pending sets are replayed from their first fragment: the outcome for
        them is the same as before, and one code path handles both.
        """
        arrival_new = self._seq + np.arange(len(idx), dtype=np.int64)
        self._seq += len(idx)
        work = PacketBatch.concat([self._pend, pb.take(idx)])
        pos = np.concatenate([np.full(len(self._pend), -1, np.int64), idx])
        arrival = np.concatenate([self._pend_arrival, arrival_new])
        now = np.concatenate([self._pend_now, now_new])
        order = np.lexsort((arrival, work.ip_id, _key_proto(work), work.dst_lo, work.dst_hi,
                            work.src_lo, work.src_hi))
        return work.take(order), pos[order], arrival[order], now[order]

    def _keep_pending(
        self, work: PacketBatch, arrival: np.ndarray, now: np.ndarray, start: np.ndarray,
        set_id: np.ndarray, done_at: np.ndarray, expired: np.ndarray,
    ) -> None:
        """Keep the open sets' fragments; drop the expired, then the oldest over the caps."""
        n_sets = len(done_at)
        counts = np.bincount(set_id, minlength=n_sets)
        set_start = start[np.searchsorted(set_id, np.arange(n_sets))]
        late = set_start + self.frag_timeout_ns <= self._clock
        dropped = (done_at < 0) & (expired | late)
        self._stats.expired_datagrams += int(dropped.sum())
        self._stats.expired_fragments += int(counts[dropped].sum())
        keep_set = (done_at < 0) & ~dropped
        self._evict(keep_set, set_start, counts, np.bincount(
            set_id, weights=work.ip_len.astype(np.float64), minlength=n_sets))
        rows = keep_set[set_id]
        self._pend = work.take(rows)
        self._pend_arrival, self._pend_now = arrival[rows], now[rows]
        self._pend_start = set_start[set_id[rows]]
        self._pend_set = (np.cumsum(keep_set) - 1)[set_id[rows]]

    def _evict(self, keep_set: np.ndarray, set_start: np.ndarray, counts: np.ndarray,
               nbytes: np.ndarray) -> None:
        """Clear ``keep_set`` for the oldest sets beyond the caps, counting them."""
        kept = np.flatnonzero(keep_set)
        newest_first = kept[np.argsort(-set_start[kept], kind="stable")]
        within = ((np.arange(1, len(kept) + 1) <= self.max_datagrams)
                  & (np.cumsum(nbytes[newest_first]) <= self.max_bytes))
        evict = newest_first[~within]
        keep_set[evict] = False
        self._stats.evicted_datagrams += len(evict)
        self._stats.evicted_fragments += int(counts[evict].sum())

    def _expire_pending(self) -> None:
        """Drop pending sets whose frag_timeout has passed (batch without fragments)."""
        late = self._pend_start + self.frag_timeout_ns <= self._clock
        if not late.any():
            return
        sets = self._pend_set[late]  # sorted: a set's fragments are contiguous
        self._stats.expired_datagrams += 1 + int(np.count_nonzero(sets[1:] != sets[:-1]))
        self._stats.expired_fragments += int(late.sum())
        keep = ~late
        self._pend = self._pend.take(keep)
        self._pend_arrival, self._pend_now = self._pend_arrival[keep], self._pend_now[keep]
        self._pend_start = self._pend_start[keep]
        _, self._pend_set = np.unique(self._pend_set[keep], return_inverse=True)


def _fragment_rows(pb: PacketBatch, maybe: np.ndarray) -> np.ndarray:
    """Fragments with a sound IP header: FRAGMENT rows, and first fragments that
    the decoder marked for their transport header (nonsense: MALFORMED, cut by
    the snaplen: TRUNCATED). Zeek reassembles before it reads the transport
    header, so those still complete their datagram."""
    transport_trouble = ((pb.status == Status.MALFORMED) | (pb.status == Status.TRUNCATED)) & (
        pb.l4_offset >= 0)
    return maybe & ((pb.status == Status.FRAGMENT) | transport_trouble)


def _key_proto(work: PacketBatch) -> np.ndarray:
    """The protocol in each row's reassembly key: IPv4's; none (-1) for IPv6, whose
    first and later fragments the decoder gives different protocols when extension
    headers follow the Fragment header (the module's first rule)."""
    return np.where(work.ip_version == 6, -1, work.proto.astype(np.int16))


def _new_group(work: PacketBatch) -> np.ndarray:
    """True where a row's reassembly key differs from the previous row's."""
    new = np.ones(len(work), np.bool_)
    if len(work) > 1:
        same = np.ones(len(work) - 1, np.bool_)
        for col in (work.src_hi, work.src_lo, work.dst_hi, work.dst_lo, _key_proto(work),
                    work.ip_id):
            same &= col[1:] == col[:-1]
        new[1:] = ~same
    return new


def _data_start(work: PacketBatch, new_group: np.ndarray) -> np.ndarray:
    """Where each fragment's data starts, counted from its IP header.

    That is ``ip_hdr_len``, but for an IPv6 first fragment the decoder goes on
    past the Fragment header to the transport header, over any extension
    headers of the fragmentable part (RFC 8200 section 4.5), which are data.
    The unfragmentable part is the same in every fragment, so a later fragment
    of the same key tells where the first one's data starts.
    """
    start = work.ip_hdr_len.astype(np.int64)
    later = work.frag_offset > 0
    first_v6 = (work.ip_version == 6) & ~later
    if not (first_v6.any() and later.any()):
        return start
    group = np.cumsum(new_group) - 1
    known = np.full(int(group[-1]) + 1, -1, np.int64)
    known[group[later]] = start[later]
    fix = first_v6 & (known[group] >= 0)
    start[fix] = known[group[fix]]
    return start


def _transport_hdr_len(proto: np.ndarray, tcp_hdr_len: np.ndarray) -> np.ndarray:
    """Transport header length per row; -1 when unknown (TCP without a data offset)."""
    th = np.zeros(len(proto), np.int64)
    th[proto == PROTO_TCP] = tcp_hdr_len[proto == PROTO_TCP]
    th[proto == PROTO_UDP] = UDP_HEADER
    th[(proto == PROTO_ICMP) | (proto == PROTO_ICMPV6)] = ICMP_HEADER_LEN
    return th


def _payload_len(pb: PacketBatch) -> np.ndarray:
    """Transport payload bytes from the IP lengths (ICMP: after its 8-byte header)."""
    th = _transport_hdr_len(pb.proto, pb.tcp_hdr_len)
    return np.where(th < 0, -1, np.maximum(pb.ip_len - pb.ip_hdr_len - th, 0))


def _fix_passed(out: PacketBatch, idx: np.ndarray) -> None:
    """First fragments cut by the snaplen go on as ordinary packets (Zeek IP.cc):
    OK when the decoder read their transport header, else as it marked them."""
    if not len(idx):
        return
    ok = idx[out.status[idx] == Status.FRAGMENT]
    out.status[ok] = Status.OK
    out.payload_len[ok] = _payload_len(out.take(ok))


def _merge(pb: PacketBatch, is_frag: np.ndarray, passed: np.ndarray, completing: np.ndarray,
           dg: PacketBatch) -> tuple[PacketBatch, np.ndarray, np.ndarray]:
    """The output rows: non-fragments, the ``passed`` first fragments, and the
    datagrams ``dg`` at their ``completing`` fragments; with each row's position in
    ``pb`` and the datagrams' indices."""
    keep = ~is_frag
    keep[passed] = True
    keep[completing] = True
    sel = np.flatnonzero(keep)
    out = pb.take(sel)
    _fix_passed(out, np.searchsorted(sel, passed))
    dest = np.searchsorted(sel, completing)
    for f in fields(PacketBatch):
        getattr(out, f.name)[dest] = getattr(dg, f.name)
    return out, sel, dest


def _datagram_rows(work: PacketBatch, data_start: np.ndarray, upper: np.ndarray,
                   set_id: np.ndarray, done: np.ndarray, last: np.ndarray,
                   size: np.ndarray) -> PacketBatch:
    """One row per completed set ``done`` (completed by row ``last``, data ``size``)."""
    if not len(done):
        return work.take(done)
    first = np.searchsorted(set_id, done)  # each set's first-arriving fragment
    at0 = np.flatnonzero((work.frag_offset == 0) & (upper > 0))
    f0 = at0[np.searchsorted(set_id[at0], done)]  # each set's first offset-0 fragment
    dg = work.take(f0)
    # Zeek keeps the first-arriving fragment's header; IPv6 without the Fragment header.
    hdr = data_start[first] - np.where(work.ip_version[first] == 6, IPV6_FRAGMENT_HEADER_LEN, 0)
    # IPv6 headers after the Fragment header (in the fragmentable part) stay in.
    after = np.where((dg.l4_offset >= 0) & (dg.l3_offset >= 0),
                     dg.l4_offset - dg.l3_offset - data_start[f0], 0)
    dg.ip_hdr_len = (hdr + np.maximum(after, 0)).astype(np.int32)
    dg.ip_len = hdr + size
    set_first_row = np.searchsorted(set_id, np.arange(int(set_id[-1]) + 1))
    dg.wire_len = np.add.reduceat(work.wire_len, set_first_row)[done]
    dg.caplen = np.add.reduceat(work.caplen, set_first_row)[done]
    dg.ts_ns, dg.record = work.ts_ns[last], work.record[last]
    # The transport header is the offset-0 fragment's: OK, or MALFORMED (nonsense).
    dg.status[:] = np.where(dg.status == Status.FRAGMENT, Status.OK, dg.status)
    dg.frag_offset[:] = 0
    dg.more_fragments[:] = False
    dg.l3_offset[:] = -1  # the datagram is in no single frame of this batch
    dg.l4_offset[:] = -1
    dg.ip_caplen = dg.ip_len.copy()  # every byte of it was captured, in its fragments
    dg.payload_len = _payload_len(dg)
    return dg


def _wrap_length(dg: PacketBatch) -> int:
    """Give datagrams longer than their 16-bit length field the wrapped length Zeek
    reads back (module docstring), MALFORMED when it cannot hold their headers; returns
    how many were that long."""
    said = wrapped_ip_length(dg.ip_len, dg.ip_version == 6)
    over = np.flatnonzero(said != dg.ip_len)
    if not over.size:
        return 0
    dg.ip_len[over] = said[over]
    dg.ip_caplen[over] = dg.ip_len[over]
    th = _transport_hdr_len(dg.proto[over], dg.tcp_hdr_len[over])
    short = dg.ip_len[over] < dg.ip_hdr_len[over] + np.maximum(th, 0)
    dg.status[over[short & (dg.status[over] == Status.OK)]] = Status.MALFORMED
    dg.payload_len[over] = _payload_len(dg.take(over))
    return int(over.size)


@compiled
def _insert(lo: np.ndarray, hi: np.ndarray, m: int, a: int, b: int) -> int:
    """Merge [a, b) into the sorted, disjoint, non-touching intervals lo/hi[:m]."""
    i = 0
    while i < m and hi[i] < a:
        i += 1
    k = i
    while k < m and lo[k] <= b:
        k += 1
    if k > i:
        a = min(a, lo[i])
        b = max(b, hi[k - 1])
    shift = 1 - (k - i)
    if shift > 0:
        for t in range(m - 1, k - 1, -1):
            lo[t + 1] = lo[t]
            hi[t + 1] = hi[t]
    elif shift < 0:
        for t in range(k, m):
            lo[t + shift] = lo[t]
            hi[t + shift] = hi[t]
    lo[i] = a
    hi[i] = b
    return m + shift


@compiled
def _assign_sets(new_group, off, upper, mf, now, start_ts, timeout):  # type: ignore[no-untyped-def]
    """Walk fragments sorted by key then arrival; sequential by nature.

    Returns per row its set number, and per set the row that completed it (-1
    if none), its reassembled data size, and whether a later fragment of its
    key found it past its timeout. Size rules: Zeek ``Frag.cc`` AddFragment
    (the MF=0 fragment sets the end, larger ones raise it) and BlockInserted
    (complete when the data from 0 is contiguous up to the end; the size is
    the end of that contiguous run).
    """
    n = off.shape[0]
    set_id = np.empty(n, np.int64)
    done_at = np.full(n, -1, np.int64)
    size = np.zeros(n, np.int64)
    expired = np.zeros(n, np.bool_)
    lo = np.empty(n + 1, np.int64)
    hi = np.empty(n + 1, np.int64)
    s, m, end, start, is_open = -1, 0, 0, 0, False
    for j in range(n):
        if new_group[j]:
            is_open = False
        if is_open and now[j] >= start + timeout:  # Zeek's FragTimer fired first
            expired[s] = True
            is_open = False
        if not is_open:
            s, m, end, start, is_open = s + 1, 0, 0, start_ts[j], True
        set_id[j] = s
        u = upper[j]
        if not mf[j]:
            end = u if end == 0 else max(end, u)
        elif end > 0 and u > end:
            end = u
        if u > off[j]:
            m = _insert(lo, hi, m, off[j], u)
        if end > 0 and m > 0 and lo[0] == 0 and hi[0] >= end:
            done_at[s] = j
            size[s] = hi[0]
            is_open = False
    return set_id, done_at[: s + 1], size[: s + 1], expired[: s + 1]
