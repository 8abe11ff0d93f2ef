"""Many capture files on Dask (dask.distributed): the flows of reading them in order as one.

    >>> flows = tracker.read_flows(paths, jobs=2)                      # doctest: +SKIP
    >>> flows = tracker.read_flows(paths, scheduler="tcp://host:8786")  # doctest: +SKIP

Files are taken in the order of their first timestamps (rotated captures, as the
sequential read takes them), in parts: one file each, or on two workers blocks of BLOCK
consecutive files (the first block file 0 alone: split_parts). Each part is two tasks
(and small others, below).
``prepare_files`` reads and decodes its files (``prepare_part``), makes the flow table's
input of every batch that needs no state (no fragment, no tunnel), and, from three
workers on, walks each file alone from an empty table (flows/stitch.py): these run in
parallel on every worker, one part ahead of its walks.
``walk_part`` then completes the part from the open state the previous part left (its
open flows, timers, pending fragments and tunnel memory: FlowTable.open_state, a copy
that no later walk changes, narrowed to about 450 bytes per open flow when it crosses the
network): it stitches a file, replaying only the flows of the 5-tuples open at the
boundary (a quarter of a file's packets here), or, where the stitch's conditions fail
(and for blocks), walks the part's files from that state. Either way the rows are the
sequential read's, flow ids included, in its order, whatever the order tasks finish in,
and a task retried by Dask (a lost worker) computes the same result from the same inputs.

The ``walk_part`` tasks follow each other (each needs its predecessor's state); they run
where their part was prepared, parts in turn on the workers, so only the state crosses
the network (``state_of``: not the part's ended rows), once per part, to the next part's
worker. A lone worker goes on with the table the walk before kept in its process
(``_KEPT``), with a copy of the state kept in the Part as the truth for a walk anywhere
else. Walks are queued ahead; this process takes each part's flows and counts
(``without_state``), never the state. Memory per worker is that of a part's prepared
files and the next part's at most (ClusterRun._chain).
``benchmarks/RESULTS.md`` measures the speed-up and says where this stops scaling.
"""

from __future__ import annotations

import copy
import ctypes
import logging
import os
import pickle
import signal
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, is_dataclass
from functools import partial
from typing import Any

import numpy as np

from tracker.decode.bpf import BpfFilter
from tracker.errors import CaptureError, ClusterError, MissingExtraError, OptionError
from tracker.flows import FlowOptions, FlowRecords, FlowTable
from tracker.flows import layout as L
from tracker.flows.records import EndedRows
from tracker.flows.stitch import Alone, can_stitch, first_part, stitch, walk_alone
from tracker.flows.table import KernelBatch, PackedBatch, narrowed
from tracker.frames import FrameBatch
from tracker.packets import PacketBatch
from tracker.pipeline import made_ready
from tracker.report.summary import RunSummary
from tracker.signals import sigint
from tracker.sources.files import open_capture
from tracker.sources.rotated import first_timestamp

Path = str | os.PathLike[str]
AHEAD = 1  # parts prepared ahead of the chain per worker
# Consecutive files in a part on two workers (prepared in one task, walked in one task
# from the carried state), while the other worker prepares its next part. Parts of 3 files
# made reads of 2 workers 5-7 % faster than parts of 2 (medians of interleaved reads),
# themselves 7 % faster than tasks of single files in blocks, for ~40 MB more per worker
# (it holds the prepared files of the part it walks): benchmarks/RESULTS.md. A lone
# worker keeps its table from file to file whatever this is.
BLOCK = 3
# Files are walked alone and stitched from this many workers on. With fewer, the whole
# walks from the carried state keep up with the prepares (on the 5M benchmark a walk
# takes 61 ms and a prepare 60), and walking alone costs a third more work; from three,
# the chain is the limit, and a stitch (49 ms) shortens it (benchmarks/RESULTS.md).
STITCH_FROM_WORKERS = 3


@dataclass
class Part:
    """What one part's walk returns (one file, or a block of consecutive files): its
    finished flows and counts, the open state to go on with, and the one-line reasons
    of the files not read.

    The state is FlowTable.open_state's dict, copied: a retried task starts from the same
    state, whatever the table it came from did since. When it is to cross the network to
    the next file's walk it is pickled here, its flow rows narrowed (3x smaller:
    flows/table.py narrow): one buffer, which the worker sends at once even while its
    next task holds the GIL (a dict of ~100 narrowed columns took up to 160 ms to go
    across then). When that walk goes on here with the kept table, which never reads the
    state, the dict is left as it is.
    """

    flows: FlowRecords
    state: dict[str, Any] | bytes | None
    summary: RunSummary
    errors: list[str] = field(default_factory=list)  # files skipped (skip_bad), why
    token: str | None = None  # names the table kept in the worker (_KEPT), if kept
    rows: EndedRows | None = None  # flows ended before ``flows``, as rows (without_state)

    def __sizeof__(self) -> int:
        return held_bytes(self)


def loaded(state: dict[str, Any] | bytes | None) -> FlowTable:
    """A table from a Part's state (pickled, or a dict it leaves unchanged)."""
    if isinstance(state, bytes):
        return FlowTable.from_state(pickle.loads(state))
    assert state is not None, "a walk after the first needs a state or a kept table"
    return FlowTable.from_state(carried_copy(state))


def carried_copy(state: dict[str, Any]) -> dict[str, Any]:
    """An open state that no table shares: open_state copies the flows' rows, not the
    fragment reassembler and the IP tunnel ids, which the table (kept, or loaded from
    this state) goes on changing."""
    return {**state, **copy.deepcopy({k: state[k] for k in ("reasm", "ip_tunnels")})}


def held_bytes(value: Any) -> int:
    """The bytes of the numpy arrays and byte strings in ``value`` and what it holds
    (dataclasses, lists, tuples, dicts), each array once: what a task's result weighs.

    Dask weighs a result with sys.getsizeof, which knows nothing of a dataclass's
    arrays: it took a part's 3 prepared files (~80 MB pickled) for 256 bytes and a walk's
    Part for 56. Weighed so, a walk was as likely to be placed away from its prepared
    files as beside them (flows_dask's graph, which Dask places itself), and the 80 MB
    crossed between workers."""
    seen: set[int] = set()
    todo, total = [value], 0
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            if isinstance(item.base, (np.ndarray, bytes, bytearray)):
                todo.append(item.base)  # a view: what it holds is its base, once
            else:  # its own memory, or a view of a mapped file: its own extent
                total += item.nbytes
        elif isinstance(item, (bytes, bytearray)):
            total += len(item)
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
        elif isinstance(item, dict):
            todo.extend(item.values())
        elif is_dataclass(item) and not isinstance(item, type):
            todo.extend(getattr(item, f.name) for f in fields(item))
    return total


# glibc's mallopt parameters (malloc.h) and the values its adaptive rule reaches for
# large blocks on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX, and twice that for trimming).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
ADAPTIVE_MMAP_MAX = 32 << 20
_ALLOCATION_SET = False


def reused_allocations() -> None:
    """Large arrays reused from the heap, as glibc does by default, in a worker that Dask
    started with MALLOC_TRIM_THRESHOLD_ set (the nanny's default,
    distributed.nanny.pre-spawn-environ; so any ``dask worker``).

    Setting that variable at all turns off glibc's adaptive mmap threshold: every array
    over 128 KB is then mapped afresh and its pages faulted in, which made a read of
    the benchmark's 20 files on 2 such workers 1.9-2.1 s against 1.4-1.5 s with this
    (benchmarks/RESULTS.md). Once per process, the thresholds the adaptive rule would
    reach are set instead (a larger heap kept, as in the sequential read; local
    clusters of this module start without the variable). Glibc on Linux only: elsewhere,
    or without mallopt, nothing changes."""
    global _ALLOCATION_SET
    if _ALLOCATION_SET:
        return
    _ALLOCATION_SET = True
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, ADAPTIVE_MMAP_MAX)
    mallopt(M_TRIM_THRESHOLD, 2 * ADAPTIVE_MMAP_MAX)


# The table the last walk in this worker process left, by its Part's token: the next
# file's walk, when it runs in the same process, goes on with it instead of loading the
# Part's state (15-35 ms for 5 MB: new arrays, page faults, the hash rebuilt). One at
# most: each walk takes it out or drops it. The Part's copy of the state stays the truth:
# a walk elsewhere, or a retried one (the table it took is changed), loads it.
_KEPT: dict[str, FlowTable] = {}


@dataclass
class Prepared:
    """One file read, decoded, made ready for the flow table's walk as far as no state
    is needed, and walked alone (flows/stitch.py) when it can be stitched: the part of
    the work done in parallel ahead of the chain; or why it was not read."""

    batches: list[PackedBatch | tuple[FrameBatch | None, PacketBatch]]
    summary: RunSummary = field(default_factory=RunSummary)
    error: str | None = None
    alone: Alone | None = None

    def __sizeof__(self) -> int:
        return held_bytes(self)


def prepare_part(path: str, options: FlowOptions, skip_bad: bool,
                 filter: str | None = None, alone: bool = False, after: Any = None
                 ) -> Prepared:
    """Read and decode one file (with the tcpdump ``filter``, as read_flows'); a file
    that is not a capture raises, or with ``skip_bad`` comes back empty with its reason.
    ``after`` is only waited for: an earlier file's finished walk (ClusterRun._chain).

    A batch without fragments or tunnels becomes the walk's input right here
    (flows/table.py prepare_batch), kept narrowed while it waits for the walk
    (KernelBatch.packed: a worker holds two prepared files); the others keep their
    packets, and their frames
    where a tunnel may be (decode/payload.py's hint), for the table to reassemble and
    open them in order. With ``alone``, a file of such batches only is also walked
    alone, to be stitched (flows/stitch.py): worth it when other workers can do so in
    parallel, not for a lone worker, which walks each file once from the carried state."""
    reused_allocations()
    bpf = None if filter is None else BpfFilter(filter)
    prepared = Prepared([])
    made: list[KernelBatch | PackedBatch | tuple[FrameBatch | None, PacketBatch]] = []
    try:
        with open_capture(path) as reader:
            for frames in reader:
                kept, packets, ready = made_ready(frames, bpf, options)
                prepared.summary.add(packets)
                # packed at once, unless the file is walked alone first (below)
                made.append((kept, packets) if ready is None else ready if alone
                            else ready.packed())
    except (CaptureError, OSError) as err:
        if not skip_bad:
            raise
        return Prepared([], RunSummary(), str(err))
    walkable = [b for b in made if isinstance(b, KernelBatch)]
    if alone and len(walkable) == len(made):
        prepared.alone = walk_alone(walkable, options)
    prepared.batches = [b.packed() if isinstance(b, KernelBatch) else b for b in made]
    return prepared


def prepare_files(paths: list[str], options: FlowOptions, skip_bad: bool,
                  filter: str | None = None, alone: bool = False, after: Any = None
                  ) -> list[Prepared]:
    """prepare_part of each of ``paths`` (a part's files), in order: one task."""
    return [prepare_part(path, options, skip_bad, filter, alone) for path in paths]


def walk_part(prepared: Prepared | list[Prepared],
              previous: Part | dict[str, Any] | bytes | None,
              options: FlowOptions, last: bool, keep: str | None = None,
              rows: bool = False) -> Part:
    """The flows of a file, or of a block of consecutive files (a list), from the state
    the ``previous`` part left (or that state; None: the first part), and the state it
    leaves; flushed at the last.
    A file is stitched from its walk alone when it can be (flows/stitch.py), else the
    flow table walks the part's files from that state, one after the other. The table
    loads a copy of the state, so a retried task starts from the same state, unless
    this process kept it from the previous walk: ``keep`` names the table this walk
    leaves for the next part's, when it runs here too. With ``rows``, the flows the
    table walk ends come as their rows (Part.rows, records made by without_state,
    after the walk)."""
    reused_allocations()
    files = prepared if isinstance(prepared, list) else [prepared]
    alone = files[0].alone if len(files) == 1 else None  # a block is never stitched
    state = previous.state if isinstance(previous, Part) else previous
    token = previous.token if isinstance(previous, Part) else None
    kept = _KEPT.pop(token, None) if token is not None else None
    _KEPT.clear()
    ended: FlowRecords | None = None
    table: FlowTable | None = None
    if state is None and kept is None:  # the first part
        if alone is None:
            table = FlowTable(options)
        else:
            ended, carried = first_part(alone)
    else:
        table = kept if kept is not None else loaded(state)
        if can_stitch(table, alone):
            assert alone is not None
            # one batch unpacked at a time (a file's at once held 48 MB more)
            ready = (b.unpacked() for b in files[0].batches if isinstance(b, PackedBatch))
            ended, carried = stitch(table, ready, alone)
            table = None
    gathered = None
    if table is not None:  # walked from the carried state
        if rows:
            table.collect_rows()
        ended = FlowRecords.concat([
            table.update_prepared(b.unpacked()) if isinstance(b, PackedBatch)
            else table.update(b[1], b[0])
            for f in files for b in f.batches])
        if table.ended_rows:  # else no flow ended, or not asked for
            gathered = EndedRows.concat(table.ended_rows)
        table.ended_rows = None
        carried = table.open_state()
    assert ended is not None
    summary = added([f.summary for f in files])
    if last:
        final = table if table is not None else FlowTable.from_state(carried)
        ended = FlowRecords.concat([ended, final.flush()])
        summary.evicted = final.evicted
    else:
        summary.evicted = int(carried["g"][L.G_EVICTED])
    summary.flows = len(ended) + (len(gathered) if gathered is not None else 0)
    if keep is not None and table is not None and not last:
        _KEPT[keep] = table
    else:
        keep = None
    state = carried_copy(carried) if keep is not None else pickle.dumps(narrowed(carried))
    return Part(ended, state, summary, [f.error for f in files if f.error is not None],
                keep, gathered)


def added(summaries: list[RunSummary]) -> RunSummary:
    """The counts of consecutive files together (the carried table's evictions are
    counted on from file to file: the walk sets them)."""
    total = RunSummary()
    for s in summaries:
        total.count(s)
    return total


def state_of(part: Part) -> dict[str, Any] | bytes | None:
    """A Part's open state alone: what the next part's walk, on another worker, fetches
    (2-3 MB pickled on the benchmark), not the whole Part with the ended rows (6 MB a
    file more), which only this worker's without_state reads."""
    return part.state


def without_state(part: Part) -> Part:
    """The Part this process takes of a file: its flows and counts, not the open state
    (5 MB a file on the benchmark), which only the next file's walk needs; the records
    of the flows the walk left as rows made here, off the chain of walks."""
    flows = part.flows if part.rows is None else FlowRecords.concat([part.rows.records(),
                                                                     part.flows])
    return Part(flows, None, part.summary, part.errors)


def split_parts(n: int, block: int) -> list[list[int]]:
    """Files 0..n-1 in the parts a chain walks: one file each, or blocks of ``block``
    consecutive files after a first block of file 0 alone, so that the first walk waits
    for one prepare, not a block's, while the next worker prepares its block (2 % off
    the median read of 2 workers, benchmarks/RESULTS.md)."""
    if block == 1 or n == 0:
        return [[i] for i in range(n)]
    return [[0]] + [list(range(i, min(n, i + block))) for i in range(1, n, block)]


def chain_parts(n: int, workers: int) -> list[list[int]]:
    """The parts of ``n`` files on ``workers`` workers: blocks of BLOCK files on two
    (walked from the carried state), single files on one and from STITCH_FROM_WORKERS
    on (ClusterRun and flows_dask alike)."""
    return split_parts(n, BLOCK if 1 < workers < STITCH_FROM_WORKERS else 1)


def ordered(paths: Sequence[Path]) -> list[str]:
    """The files in the order of their first timestamps (files without frames last)."""
    names = [os.fspath(p) for p in paths]
    firsts: dict[str, int | None] = {}
    for name in names:
        try:
            firsts[name] = first_timestamp(name)
        except (CaptureError, OSError):
            firsts[name] = None  # its task reports it (or skips it with skip_bad)
    never = max((t for t in firsts.values() if t is not None), default=0) + 1
    return sorted(names, key=lambda n: (firsts[n] is None, firsts[n] or never,
                                        names.index(n)))


@dataclass
class ClusterRun:
    """The flows of ``paths`` on a Dask cluster, file after file (see the module).

    Iterate ``finished()`` for each part's finished flows in order (a file, or a block
    of files); ``summary`` adds the files' counts up as they come, ``skipped`` lists
    the files left out with ``skip_bad``. ``jobs`` starts a local cluster of that many
    worker processes; ``scheduler`` joins a running one; ``client`` uses a
    dask.distributed Client.
    ``stop()`` (Ctrl-C) ends the run after the part being taken, as FlowRun's does after
    a batch: the flows still open then end with its reason.
    """

    paths: Sequence[Path]
    options: FlowOptions
    jobs: int | None = None
    scheduler: str | None = None
    client: Any = None
    skip_bad: bool = False
    filter: str | None = None
    progress: bool = False
    summary: RunSummary = field(default_factory=RunSummary)
    skipped: list[str] = field(default_factory=list)
    stopped: str | None = None

    def finished(self) -> Iterator[FlowRecords]:
        client, owned = self._client()
        try:
            yield from self._chain(client)
        finally:
            if owned:
                cluster = client.cluster  # None when joined by address
                client.close()
                if cluster is not None:
                    cluster.close()

    def stop(self, reason: str = "interrupted", *, drain: bool = False) -> None:
        """End the run once the part being taken is out (a file, or a block of files on
        two workers: split_parts); the flows open after it end with ``reason``, as the
        sequential read's end after a batch (FlowRun.stop; ``drain`` is for live
        sources, and files have no kernel queue to drain). Safe to call from a signal
        handler: it only sets a flag."""
        self.stopped = reason

    def _chain(self, client: Any) -> Iterator[FlowRecords]:
        """The parts' tasks: prepares run ahead, at most AHEAD parts per worker; the walk
        of part k runs where part k was prepared, after the walk of part k - 1.

        The prepare of part k waits for the walk of part k - ahead, on the same worker
        (its previous part; the walk itself, so that the prepare is ready as soon as the
        walk ends, not one scheduler round trip later behind the records task, and holds
        that walk's Part until it ends): a worker prepares its next part once it has
        walked one, never in the gap while the state for its next walk is on its way to
        it (a prepare that started there held the chain up by a whole prepare, ~75 ms),
        and never more than AHEAD parts per worker are prepared and not yet walked
        (without it, prepares that ran early held 490 MB per worker on some runs, against
        380; benchmarks/RESULTS.md). Unique keys: two clients of one scheduler must not
        share a task."""
        files = ordered(self.paths)
        n, tag = len(files), uuid.uuid4().hex[:12]  # keys unique across clients
        workers = sorted(client.scheduler_info().get("workers", {})) or [None]
        parts = chain_parts(n, len(workers))
        m, ahead = len(parts), AHEAD * len(workers)
        prepared: dict[int, Any] = {}
        started: set[int] = set()
        walks: dict[int, Any] = {}  # part -> its walk's Part, while a later walk may need it
        done: dict[int, Any] = {}  # part -> its walk's flows without the state, until taken

        def home(k: int) -> dict[str, Any]:
            """Part k's prepare and walk prefer one worker (parts in turn): the prepared
            files stay where they are and only the state moves; any worker may step in."""
            where = workers[k % len(workers)]
            return {} if where is None else {"workers": [where], "allow_other_workers": True}

        def prepare(k: int) -> None:
            if k < m and k not in started:
                started.add(k)
                prepared[k] = client.submit(
                    prepare_files, [files[i] for i in parts[k]], self.options,
                    self.skip_bad, self.filter, len(workers) >= STITCH_FROM_WORKERS,
                    walks.get(k - ahead), pure=False, key=f"tracker-prep-{k}-{tag}", **home(k))

        def walk(k: int) -> None:
            """Part k's walk after part k - 1's, and its Part without the state (done):
            this process takes the flows, only the next walk needs the state."""
            prepare(k)
            # The chain goes first: a worker takes its walk (priority 2) before making the
            # records of its last one (1) and before any queued prepare (0).
            key = f"tracker-walk-{k}-{tag}"
            keep = key if k + 1 < m and home(k + 1) == home(k) else None
            previous = walks.get(k - 1)
            if previous is not None and home(k - 1) != home(k):
                # The state alone crosses (state_of, first in its worker's queue): the
                # next walk began 2 % sooner than when it fetched the whole Part (medians
                # of 8-10 interleaved reads, benchmarks/RESULTS.md).
                previous = client.submit(state_of, previous, pure=False, priority=3,
                                         key=f"tracker-state-{k}-{tag}", **home(k - 1))
            walks[k] = client.submit(walk_part, prepared.pop(k), previous,
                                     self.options, k == m - 1, keep, True, pure=False,
                                     key=key, priority=2, **home(k))
            done[k] = client.submit(without_state, walks[k], pure=False,
                                    key=f"tracker-done-{k}-{tag}", priority=1, **home(k))

        for k in range(ahead):
            prepare(k)
        for k in range(m):
            # Walks are queued ahead of the parts this process takes: each waits on the
            # scheduler for its predecessor only. (Queued once part k - 1 was taken, the
            # next worker's walk started 20-40 ms after the last one ended.)
            for j in range(k, min(m, k + max(ahead, 2))):
                if j not in walks:
                    walk(j)
            prepare(k + ahead)
            yield self._take(done.pop(k), [files[i] for i in parts[k]], parts[k][-1] + 1, n)
            if self.stopped is not None:
                if k + 1 < m:  # else the last walk ended the open flows: all was read
                    yield self._open_ended(walks[k], self.stopped)
                    return
                self.stopped = None
            walks.pop(k - 1, None)

    def _take(self, future: Any, paths: list[str], taken: int, n: int) -> FlowRecords:
        """A part's flows (``paths``: its files; ``taken``: the files taken with it)."""
        try:
            part: Part = future.result()
        except (CaptureError, OSError) as err:
            raise CaptureError(f"{err}") from None
        except Exception as err:  # Dask's own failures (KilledWorker, ...): one line
            said = str(err).split(". ")[0].strip() or "no reason given"
            raise ClusterError(f"{', '.join(paths)}: the cluster did not finish reading "
                               f"{'it' if len(paths) == 1 else 'them'} "
                               f"({type(err).__name__}: {said})") from err
        for error in part.errors:
            self.skipped.append(error)
            print(f"tracker: skipped {error}", file=sys.stderr)
        self._add(part.summary)
        if self.progress:
            print(f"\rtracker: {taken}/{n} files, {self.summary.frames:,} frames",
                  end="\n" if taken == n else "", file=sys.stderr, flush=True)
        return part.flows

    def _open_ended(self, part: Any, reason: str) -> FlowRecords:
        """The flows open after a file's walk (its Part's state), ended with ``reason``
        here, in the order the sequential read's flush gives them (FlowTable.flush)."""
        table = loaded(part.result().state)
        rest = table.flush(reason)
        self.summary.flows += len(rest)
        self.summary.evicted = table.evicted
        return rest

    def _add(self, s: RunSummary) -> None:
        self.summary.count(s)
        self.summary.evicted = s.evicted  # the carried table counts on from file to file

    def _client(self) -> tuple[Any, bool]:
        """(client, whether this run started it and must close it)."""
        try:
            from distributed import Client
        except ImportError as missing:
            raise MissingExtraError("dask", "dask.distributed") from missing
        if self.client is not None:
            return self.client, False
        if self.scheduler is not None:
            try:
                refused(self.scheduler)
                return Client(self.scheduler, timeout="10s"), True
            except OSError as err:
                raise OptionError(f"--scheduler {self.scheduler}: cannot connect ({err}); "
                                  "expected a running dask scheduler, tcp://HOST:PORT") from None
            except (ValueError, TypeError) as err:  # Dask's reading of the address
                said = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise OptionError(f"--scheduler {self.scheduler}: not an address Dask can "
                                  f"reach ({said}); expected tcp://HOST:PORT") from None
        return Client(local_cluster(self.jobs or 1)), True


def refused(address: str) -> None:
    """Raise ConnectionRefusedError at once when nothing listens at a tcp:// address
    (Dask's Client retries a refused connection until its timeout, 10 s here, before it
    says so), and ValueError for a port that is no port. Other schemes, and any other
    outcome, are left to the Client."""
    import socket
    from urllib.parse import urlsplit

    # Dask reads an address without a scheme as tcp://
    url = urlsplit(address if "://" in address else f"tcp://{address}")
    port = url.port  # ValueError for a port out of range or not a number (the caller says it)
    if url.scheme != "tcp" or url.hostname is None or port is None:
        return
    try:
        socket.create_connection((url.hostname, port), timeout=2).close()
    except ConnectionRefusedError:
        raise
    except OSError:
        return  # unreachable or slow: the Client's own timeout decides


def local_cluster(workers: int) -> Any:
    """A LocalCluster of ``workers`` single-threaded processes for these tasks.

    Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, and setting that variable at
    all turns off glibc's adaptive mmap threshold: every large numpy array is then mapped
    and unmapped afresh, which made a file's task 2.3x slower here (benchmarks/RESULTS.md).
    Workers started here keep glibc's defaults, as the sequential read has them (workers
    started elsewhere get its thresholds back: reused_allocations). Worker
    logs stay quiet: a task's error reaches this process and is said once. Nor do they
    run the periodic work of a dashboard no one opens here: each worker's profiler
    samples every thread's stack every 10 ms, and every process times its event loop
    every 20 ms; both take the GIL and the CPU from the tasks (without them, 2 workers
    were faster in 6 of 7 interleaved runs, by up to 15 %: benchmarks/RESULTS.md).
    """
    import dask
    from distributed import LocalCluster

    key = "distributed.nanny.pre-spawn-environ"
    environ = {k: v for k, v in dask.config.get(key, {}).items()
               if k != "MALLOC_TRIM_THRESHOLD_"}
    quiet = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s"}
    with dask.config.set({key: environ, **quiet}), sigint_ignored():
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=":0", silence_logs=logging.CRITICAL)


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while local workers start, for them to keep it ignored.

    A Ctrl-C at the terminal reaches the whole process group, local workers too: they
    died with tracebacks and the run stood waiting for their work. This process alone
    takes it (ClusterRun.stop: the file being read is finished and written). An ignored
    signal stays ignored across exec and a Python process started so keeps it (asyncio
    replaces only the default handler); a blocked one did not stay blocked. The cost: a
    Ctrl-C while the workers start (a second or two) is lost, and a worker Dask restarts
    later starts with the default."""
    with sigint(signal.SIG_IGN):
        yield


def flows_dask(paths: Sequence[Path], options: FlowOptions | None = None, *,
               client: Any = None, skip_bad: bool = False, filter: str | None = None) -> Any:
    """The flows of ``paths`` as a ``dask.dataframe``, one partition per part (one file,
    or on two workers a block of BLOCK consecutive files: split_parts), in the
    sequential read's order, computed on ``client`` (default: the current one), with
    the tcpdump ``filter`` as read_flows'; tracker.read_flows_dask checks the options.

    ClusterRun's tasks, as one graph: each part's prepare (in parallel), its walk from
    the state the part before left (a chain), and its partition (the records made off
    the chain, as a DataFrame). A prepare also waits for the walk AHEAD parts per
    worker before it (through a task that returns nothing, so that it fetches nothing):
    at most that many prepared parts wait for the chain, however many files there are;
    without it Dask runs every prepare as soon as a worker is free. Dask places these
    tasks itself (worker annotations do not survive into a DataFrame's graph): a walk
    goes where its prepared files are, which Dask sees by their weight (held_bytes),
    and no walk counts on finding its table kept in its worker. On 2 workers, parts of
    3 read the 20 files of benchmarks/cluster.py in 1.64-1.73 s against 2.10-2.15 s a
    file at a time (medians of 12 reads on 4 clusters each, taken in turn:
    benchmarks/RESULTS.md)."""
    import dask
    import dask.dataframe as dd

    from tracker.report.flows import flows_dataframe

    options = options or FlowOptions()
    files = ordered(paths)
    workers = _workers(client)
    parts = chain_parts(len(files), workers)
    ahead = AHEAD * workers
    task = partial(dask.delayed, pure=False)
    walks: list[Any] = []
    frames: list[Any] = []
    for k, part in enumerate(parts):
        after = task(_ticket)(walks[k - ahead]) if k >= ahead else None
        prepared = task(prepare_files)([files[i] for i in part], options, skip_bad, filter,
                                       workers >= STITCH_FROM_WORKERS, after)
        walks.append(task(walk_part)(prepared, walks[-1] if walks else None, options,
                                     k == len(parts) - 1, None, True))
        frames.append(task(part_frame)(walks[-1]))
    meta = flows_dataframe(FlowRecords.empty())
    # tunnel_parents holds tuples: Dask must not turn object columns into strings.
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_delayed(frames, meta=meta, verify_meta=False)


def part_frame(part: Part) -> Any:
    """A part's partition of flows_dask: its flows as a DataFrame (records made here)."""
    from tracker.report.flows import flows_dataframe

    return flows_dataframe(without_state(part).flows)


def _ticket(part: Part) -> None:
    """Nothing: a prepare waits on this, not on the walk's Part, which it would fetch."""


def _workers(client: Any) -> int:
    """The workers of ``client``, or of the current client; 2 when there is no client
    yet (the graph may be computed later, on a cluster not started yet)."""
    try:
        from distributed import default_client
    except ImportError as missing:
        raise MissingExtraError("dask", "dask.distributed") from missing
    if client is None:
        try:
            client = default_client()
        except ValueError:  # no client yet
            return 2
    return max(1, len(client.scheduler_info().get("workers", {})))
