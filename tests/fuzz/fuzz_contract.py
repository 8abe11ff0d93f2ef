"""The contract every hostile input must keep, checked the same way by fuzzers and tests.

Issue 5: a capture, whatever its bytes, ends one of two ways:

1. flows plus a count of frames per ``Status`` (malformed packets are counted,
   never raised), or
2. one error of the project's own type (``tracker.errors.CaptureError``) whose
   message names the file and where (``byte N``, ``record N`` or ``block N``).

Anything else (another exception, a warning that is not a ``TrackerWarning``,
an array that breaks the documented invariants) is a ``ContractViolation``.
Time and memory are bounded by the caller: libFuzzer's ``-timeout`` and
``-rss_limit_mb`` for the fuzzers, ``hypothesis`` deadlines for the tests.

The atheris targets (``fuzz_*.py``), the hypothesis properties
(``tests/test_hostile_properties.py``) and the regression inputs
(``tests/fuzz/regressions``) all call the ``check_*`` functions below.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields

import numpy as np

from tracker import jit
from tracker.api import FlowRun
from tracker.decode import decode
from tracker.errors import CaptureError, NotACaptureError, TrackerWarning
from tracker.flows import FlowOptions, FlowRecords, FlowTable
from tracker.flows.records import END_REASONS
from tracker.frames import FrameBatch
from tracker.packets import PacketBatch, Status
from tracker.sources import _walk
from tracker.sources.memory import open_bytes

NAME = "hostile.pcap"  # the name given to in-memory captures; every error must carry it
# Where a file-level error happened, as tracker.errors documents the messages.
WHERE = re.compile(r"\b(byte|record|block) \d+")
STATUS_VALUES = frozenset(int(s) for s in Status)


class ContractViolation(AssertionError):
    """An input broke the contract of the module docstring."""


def expect(ok: bool | np.bool_, what: str) -> None:
    """Raise ContractViolation with ``what`` unless ``ok``."""
    if not ok:
        raise ContractViolation(what)


@dataclass
class Outcome:
    """How one capture ended: frames per status and flows, or the error message."""

    frames: int = 0
    status: dict[str, int] = field(default_factory=dict)
    flows: int = 0
    evicted: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@contextmanager
def tracker_warnings_only(out: list[str]) -> Iterator[None]:
    """Collect warnings into ``out``; any that is not a TrackerWarning breaks the contract."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        expect(issubclass(w.category, TrackerWarning),
               f"foreign warning {w.category.__name__}: {w.message}")
        expect(NAME in str(w.message), f"warning without the file name: {w.message}")
        out.append(str(w.message))


def check_error(err: CaptureError) -> str:
    """A file-level error must name the file, and where unless it is about the first bytes."""
    msg = str(err)
    expect(msg.startswith(NAME + ":"), f"error does not start with the file name: {msg!r}")
    expect("\n" not in msg, f"error message is not one line: {msg!r}")
    if not isinstance(err, NotACaptureError):  # those are about the first bytes by definition
        expect(WHERE.search(msg) is not None, f"error without byte/record/block: {msg!r}")
    return msg


# --- readers --------------------------------------------------------------------


def check_frames(fb: FrameBatch, first: int) -> None:
    """Invariants of a FrameBatch handed out by a reader (tracker/frames.py)."""
    n = len(fb)
    expect(n > 0, "empty batch yielded")
    for name in ("caplen", "wire_len", "ts_ns"):
        expect(len(getattr(fb, name)) == n, f"{name} has another length than start")
    expect(fb.first_record == first, f"first_record {fb.first_record}, expected {first}")
    expect(bool((fb.caplen >= 0).all()), "negative caplen")
    expect(bool((fb.wire_len >= 0).all()), "negative wire_len")
    expect(bool((fb.start >= 0).all()), "negative start")
    expect(bool((fb.start + fb.caplen <= fb.data.size).all()), "frame runs past its buffer")
    expect(0 <= fb.linktype <= 0xFFFF, f"link type {fb.linktype} out of 16 bits")


def read_all(data: bytes, batch_bytes: int) -> tuple[list[FrameBatch], str | None]:
    """Every batch of the capture, and the error message if reading stopped on one."""
    batches: list[FrameBatch] = []
    frames = 0
    try:
        with open_bytes(data, name=NAME, batch_bytes=batch_bytes) as reader:
            for fb in reader:
                check_frames(fb, frames)
                frames += len(fb)
                batches.append(fb)
    except CaptureError as err:
        return batches, check_error(err)
    return batches, None


def frames_of(batches: list[FrameBatch]) -> list[tuple[int, int, int, int, bytes]]:
    """(link type, ts, wire, caplen, bytes) of every frame, to compare two reads."""
    return [(b.linktype, int(b.ts_ns[i]), int(b.wire_len[i]), int(b.caplen[i]),
             b.data[b.start[i]:b.start[i] + b.caplen[i]].tobytes())
            for b in batches for i in range(len(b))]


@contextmanager
def walkers(compiled: bool) -> Iterator[None]:
    """Force the numba-compiled or the interpreted record walkers (tracker/sources/_walk.py)."""
    saved = _walk._compiled, jit.SMALL_INPUT
    if compiled:
        if _walk._compiled is None:  # compile once per process (or load numba's disk cache)
            _walk.walkers(1 << 40)
            saved = _walk._compiled, saved[1]
        jit.SMALL_INPUT = 0
    else:
        _walk._compiled, jit.SMALL_INPUT = None, 1 << 62
    try:
        yield
    finally:
        _walk._compiled, jit.SMALL_INPUT = saved


def check_reader(data: bytes, *, batch_bytes: int = 1 << 16, compare_compiled: bool = False
                 ) -> Outcome:
    """Read ``data`` as a capture file; with ``compare_compiled`` also with numba's walkers.

    Both walkers must give the same frames and the same error: the compiled one
    has no bounds checks, so a difference there is a read outside the buffer.
    """
    out = Outcome()
    with tracker_warnings_only(out.warnings), walkers(compiled=False):
        batches, out.error = read_all(data, batch_bytes)
    out.frames = sum(len(b) for b in batches)
    if compare_compiled:
        seen: list[str] = []
        with tracker_warnings_only(seen), walkers(compiled=True):
            again, error = read_all(data, batch_bytes)
        expect(error == out.error, f"compiled walker: error {error!r} != {out.error!r}")
        expect(frames_of(again) == frames_of(batches), "compiled walker: other frames")
    return out


class NamedBytes(io.BytesIO):
    """A capture image with a file name, as FlowRun and the readers take a file object."""

    def __init__(self, data: bytes, name: str = NAME) -> None:
        super().__init__(data)
        self.name = name


def check_capture(data: bytes, options: FlowOptions | None = None) -> Outcome:
    """The whole pipeline (reader, decode, flow table, summary) on a capture file image."""
    out = Outcome()
    run = FlowRun(NamedBytes(data), options or FlowOptions())
    parts: list[FlowRecords] = []
    with tracker_warnings_only(out.warnings):
        try:
            for packets, ids, ended in run:
                check_packets(packets)
                expect(len(ids) == len(packets), "flow_ids and packets differ in length")
                parts.append(ended)
        except CaptureError as err:
            out.error = check_error(err)
    s = run.summary
    out.frames, out.status, out.evicted = s.frames, dict(s.status), run.table.evicted
    out.flows = sum(len(p) for p in parts)
    expect(sum(s.status.values()) == s.frames, "status counts do not add up to the frames")
    if out.error is None:
        check_records(FlowRecords.concat(parts), run.table.options, run.table.evicted)
        expect(s.flows == out.flows, f"summary says {s.flows} flows, {out.flows} came out")
        expect(s.evicted == out.evicted, "summary evicted differs from the table's")
    return out


# --- decoder --------------------------------------------------------------------


def check_packets(pb: PacketBatch) -> None:
    """Invariants of a decoded PacketBatch (tracker/packets.py)."""
    n = len(pb)
    for f in fields(PacketBatch):
        expect(len(getattr(pb, f.name)) == n, f"column {f.name} has another length")
    expect(set(np.unique(pb.status).tolist()) <= STATUS_VALUES, "unknown status value")
    expect(set(np.unique(pb.ip_version).tolist()) <= {0, 4, 6}, "ip_version not 0, 4 or 6")
    for port in (pb.src_port, pb.dst_port):
        expect(bool(((port >= -1) & (port <= 0xFFFF)).all()), "port outside -1..65535")
    ip = pb.ip_version > 0
    expect(bool((pb.l3_offset[ip] >= 0).all()), "IP row without l3_offset")
    whole = (pb.status == Status.OK) | (pb.status == Status.FRAGMENT)  # addresses were read
    v4 = whole & (pb.ip_version == 4)
    expect(bool(((pb.src_hi[v4] == 0) & (pb.src_lo[v4] >> np.uint64(32) == 0xFFFF)).all()),
           "IPv4 source not mapped into ::ffff:0:0/96")
    ok_tcp = (pb.status == Status.OK) & (pb.proto == 6)
    expect(bool((pb.tcp_hdr_len[ok_tcp] >= 20).all()), "OK TCP row with data offset < 5")
    l4 = pb.l4_offset >= 0
    expect(bool((pb.l4_offset[l4] >= pb.l3_offset[l4]).all()), "transport before the IP header")


def check_decode(frames: list[bytes], linktype: int, wire: list[int] | None = None
                 ) -> PacketBatch:
    """Decode ``frames``; bytes outside the frames and the batch split must change nothing,
    nor decoding without the compiled pass over plain frames."""
    wire = [len(f) for f in frames] if wire is None else wire
    pb = decode(frame_batch(frames, linktype, wire, filler=0x00))
    check_packets(pb)
    expect(len(pb) == len(frames), "decode gave another number of rows than frames")
    starts = frame_batch(frames, linktype, wire, filler=0).start
    for col in (pb.l3_offset, pb.l4_offset):
        inside = (col < 0) | (col <= starts + np.array([len(f) for f in frames], np.int64))
        expect(bool(inside.all()), "a header offset lies past its frame")
    same(pb, decode(frame_batch(frames, linktype, wire, filler=0xFF)), "bytes between frames")
    same(pb, decode(frame_batch(frames, linktype, wire, filler=0x00), plain=False),
         "the compiled pass over plain frames (decode/plain.py) and the layers alone")
    if len(frames) > 1:
        h = len(frames) // 2
        parts = [decode(frame_batch(frames[:h], linktype, wire[:h], filler=0)),
                 decode(frame_batch(frames[h:], linktype, wire[h:], filler=0, first=h))]
        same(pb, PacketBatch.concat(parts), "the batch split", offsets=False)
    return pb


def frame_batch(frames: list[bytes], linktype: int, wire: list[int], *, filler: int,
                first: int = 0) -> FrameBatch:
    """Frames in one buffer, each followed by 7 bytes of ``filler`` that no decoder may read."""
    gap = bytes([filler]) * 7
    starts, pos = [], len(gap)
    for f in frames:
        starts.append(pos)
        pos += len(f) + len(gap)
    data = np.frombuffer(gap + b"".join(f + gap for f in frames), np.uint8)
    n = len(frames)
    return FrameBatch(data, np.array(starts, np.int64),
                      np.array([len(f) for f in frames], np.int64), np.array(wire, np.int64),
                      np.arange(first, first + n, dtype=np.int64) * 1000, linktype, first)


def same(a: PacketBatch, b: PacketBatch, what: str, *, offsets: bool = True) -> None:
    """Both batches hold the same values (offsets into the buffer only when ``offsets``)."""
    for f in fields(PacketBatch):
        if not offsets and f.name in ("l3_offset", "l4_offset"):
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if not np.array_equal(x, y):  # formatted only on failure: arrays print slowly
            raise ContractViolation(f"{f.name} depends on {what}: {x} != {y}")


# --- flow table -----------------------------------------------------------------


def check_records(rec: FlowRecords, options: FlowOptions, evicted: int) -> None:
    """Invariants of the flows a table gave out over a whole run."""
    expect(len(np.unique(rec.flow_id)) == len(rec), "a flow id came out twice")
    expect(bool((rec.orig_pkts >= 0).all() and (rec.resp_pkts >= 0).all()), "negative count")
    ended_by_cap = int((rec.end_reason == END_REASONS.index("evicted")).sum())
    expect(ended_by_cap == evicted, f"{evicted} evicted, {ended_by_cap} flows end so")
    if options.max_open_flows is None:
        expect(evicted == 0, "flows evicted without a cap")


def run_table(batches: list[FrameBatch], options: FlowOptions
              ) -> tuple[FlowRecords, np.ndarray]:
    """Decode and run ``batches`` through a fresh FlowTable; its flows and every row's flow."""
    cap = options.max_open_flows
    # Small, so that the growth paths run; a capped table sizes itself from the cap
    # (1.5 slots per allowed flow: sizes that are not powers of two).
    table = FlowTable(options) if cap is not None else FlowTable(options, initial_slots=16)
    parts, ids = [], []
    for fb in batches:
        pb = decode(fb)
        parts.append(table.update(pb))
        expect(len(table.flow_ids) == len(pb), "flow_ids and packets differ in length")
        expect(cap is None or table.open_flows <= cap, f"{table.open_flows} open, cap {cap}")
        ids.append(table.flow_ids.copy())
    parts.append(table.flush())
    expect(table.open_flows == 0, "flows still open after flush")
    rec = FlowRecords.concat(parts)
    check_records(rec, options, table.evicted)
    flow_of = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    expect(bool(np.isin(flow_of[flow_of >= 0], rec.flow_id).all()), "packet of an unknown flow")
    counted = int(rec.orig_pkts.sum() + rec.resp_pkts.sum())  # a datagram counts once
    expect(counted <= len(flow_of), f"flows count {counted} packets of {len(flow_of)} frames")
    return rec, flow_of


def check_flows(split: list[FrameBatch], whole: list[FrameBatch], options: FlowOptions
                ) -> FlowRecords:
    """The flows of ``split``; cut into other batches (``whole``) they must be the same."""
    rec, flow_of = run_table(split, options)
    if len(whole) != len(split):
        rec2, flow_of2 = run_table(whole, options)
        expect(np.array_equal(flow_of, flow_of2), "flow ids depend on the batch split")
        a, b = np.argsort(rec.flow_id), np.argsort(rec2.flow_id)
        for f in fields(FlowRecords):
            x, y = getattr(rec, f.name)[a], getattr(rec2, f.name)[b]
            if not np.array_equal(x, y):
                raise ContractViolation(f"flows depend on the batch split: {f.name} {x} != {y}")
    return rec
