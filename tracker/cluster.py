"""Many capture files on Dask (dask.distributed): the flows of reading them in order as one.

    >>> flows = tracker.read_flows(paths, jobs=2)                      # doctest: +SKIP
    >>> flows = tracker.read_flows(paths, scheduler="tcp://host:8786")  # doctest: +SKIP

Files are taken in the order of their first timestamps (rotated captures, as the
sequential read takes them). Each file is two tasks. ``prepare_part`` reads and decodes
it and makes the flow table's input of every batch that needs no state (no fragment, no
tunnel): these run in parallel on every worker, a few files ahead.
``walk_part`` runs the flow table over the prepared file, starting from the open state
the previous file's walk left (its open flows, timers, pending fragments and tunnel
memory, pickled: FlowTable.__getstate__, about 450 bytes per open flow), and leaves its own
for the next. Connections that span files are so stitched exactly: the rows are the
sequential read's, in its order, whatever the order tasks finish in, and a task retried
by Dask (a lost worker) computes the same result from the same inputs.

The walks follow each other (each needs its predecessor's state); they run where their
file was prepared, so only the state crosses the network at a file boundary. Memory per
worker is that of a few prepared files. ``benchmarks/RESULTS.md`` measures the speed-up
and says where this stops scaling.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracker.decode.bpf import BpfFilter
from tracker.errors import CaptureError, MissingExtraError, OptionError
from tracker.flows import FlowOptions, FlowRecords, FlowTable
from tracker.flows.table import KernelBatch, prepare_batch
from tracker.frames import FrameBatch
from tracker.packets import PacketBatch
from tracker.pipeline import filtered
from tracker.report.summary import RunSummary
from tracker.sources.files import open_capture
from tracker.sources.rotated import first_timestamp

Path = str | os.PathLike[str]
AHEAD = 1  # files prepared ahead of the chain per worker


@dataclass
class Part:
    """What one file's task returns: its finished flows and counts, the open state to go
    on with (a pickled FlowTable: immutable bytes, so a retried task starts from the same
    state, and a worker holds its open flows only, not a table's preallocated arrays),
    or the one-line reason the file was not read."""

    flows: FlowRecords
    state: bytes
    summary: RunSummary
    error: str | None = None


@dataclass
class Prepared:
    """One file read and decoded, batch by batch, and made ready for the flow table's
    walk as far as no state is needed: the part of the work done in parallel ahead of the
    chain; or why not."""

    batches: list[KernelBatch | tuple[FrameBatch | None, PacketBatch]]
    summary: RunSummary = field(default_factory=RunSummary)
    error: str | None = None


def prepare_part(path: str, options: FlowOptions, skip_bad: bool,
                 filter: str | None = None) -> Prepared:
    """Read and decode one file (with the tcpdump ``filter``, as read_flows'); a file
    that is not a capture raises, or with ``skip_bad`` comes back empty with its reason.

    A batch without fragments or tunnels becomes the walk's input right here
    (flows/table.py prepare_batch: keys and columns, half of a walk's work); the others
    keep their packets, and their frames where a tunnel may be (decode/payload.py's
    hint), for the table to reassemble and open them in order."""
    bpf = None if filter is None else BpfFilter(filter)
    prepared = Prepared([])
    try:
        with open_capture(path) as reader:
            for frames in reader:
                packets = filtered(frames, bpf, options.verify_checksums)
                prepared.summary.add(packets)
                ready = prepare_batch(packets, options)
                prepared.batches.append(
                    ready if ready is not None
                    else (frames if packets.tunnel_hint.any() else None, packets))
        return prepared
    except (CaptureError, OSError) as err:
        if not skip_bad:
            raise
        return Prepared([], RunSummary(), str(err))


def walk_part(prepared: Prepared, previous: Part | bytes | None, options: FlowOptions,
              last: bool) -> Part:
    """The flow table over one prepared file, from the state the ``previous`` file's walk
    left (or that state's bytes; None: the first file); flushed at the last. The table
    loads from bytes, so a retried task starts from the same state."""
    state = previous.state if isinstance(previous, Part) else previous
    table = pickle.loads(state) if state is not None else FlowTable(options)
    parts: list[FlowRecords] = []
    for batch in prepared.batches:
        if isinstance(batch, KernelBatch):
            parts.append(table.update_prepared(batch))
        else:
            parts.append(table.update(batch[1], batch[0]))
    if last:
        parts.append(table.flush())
    ended = FlowRecords.concat(parts)
    summary = prepared.summary
    summary.flows = len(ended)
    summary.evicted = table.evicted
    return Part(ended, pickle.dumps(table), summary, prepared.error)


def read_part(path: str, state: bytes | None, options: FlowOptions, last: bool,
              skip_bad: bool, filter: str | None = None) -> Part:
    """prepare_part and walk_part in one task (flows_dask's partitions)."""
    return walk_part(prepare_part(path, options, skip_bad, filter), state, options, last)


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

    Iterate ``finished()`` for each file's finished flows in order; ``summary`` adds the
    files' counts up as they come, ``skipped`` lists the files left out with
    ``skip_bad``. ``jobs`` starts a local cluster of that many worker processes;
    ``scheduler`` joins a running one; ``client`` uses a dask.distributed Client.
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

    def _chain(self, client: Any) -> Iterator[FlowRecords]:
        """Prepare tasks run ahead, at most AHEAD per worker (memory stays bounded); the
        walk of file i runs where file i was prepared, after the walk of file i - 1."""
        files = ordered(self.paths)
        n, tag = len(files), id(self)
        workers = sorted(client.scheduler_info().get("workers", {})) or [None]
        ahead = AHEAD * len(workers)
        prepared: dict[int, Any] = {}
        started: set[int] = set()

        def home(i: int) -> dict[str, Any]:
            """File i's prepare and walk prefer one worker (round robin): the prepared
            file stays where it is and only the state moves; any worker may step in."""
            where = workers[i % len(workers)]
            return {} if where is None else {"workers": [where], "allow_other_workers": True}

        def prepare(i: int) -> None:
            if i < n and i not in started:
                started.add(i)
                prepared[i] = client.submit(prepare_part, files[i], self.options, self.skip_bad,
                                            self.filter, pure=False, key=f"tracker-prep-{i}-{tag}",
                                            **home(i))

        def walk(i: int, previous: Any) -> Any:
            prepare(i)
            return client.submit(walk_part, prepared.pop(i), previous, self.options,
                                 i == n - 1, pure=False, key=f"tracker-walk-{i}-{tag}",
                                 **home(i))

        for i in range(ahead):
            prepare(i)
        part = walk(0, None) if n else None
        for i in range(n):
            following = None
            if i + 1 < n:  # queued before waiting: the chain never waits for this process
                following = walk(i + 1, part)
            prepare(i + ahead)
            yield self._take(part, i, n)
            part = following

    def _take(self, future: Any, i: int, n: int) -> FlowRecords:
        try:
            part: Part = future.result()
        except (CaptureError, OSError) as err:
            raise CaptureError(f"{err}") from None
        if part.error is not None:
            self.skipped.append(part.error)
            print(f"tracker: skipped {part.error}", file=sys.stderr)
        self._add(part.summary)
        if self.progress:
            print(f"\rtracker: {i + 1}/{n} files, {self.summary.frames:,} frames",
                  end="\n" if i + 1 == n else "", file=sys.stderr, flush=True)
        return part.flows

    def _add(self, s: RunSummary) -> None:
        self.summary.frames += s.frames
        for name, count in s.status.items():
            self.summary.status[name] += count
        self.summary.flows += s.flows
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
                return Client(self.scheduler, timeout="10s"), True
            except OSError as err:
                raise OptionError(f"--scheduler {self.scheduler}: cannot connect ({err}); "
                                  "expected a running dask scheduler, tcp://HOST:PORT") from None
        return Client(local_cluster(self.jobs or 1)), True


def local_cluster(workers: int) -> Any:
    """A LocalCluster of ``workers`` single-threaded processes for these tasks.

    Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, and setting that variable at
    all turns off glibc's adaptive mmap threshold: every large numpy array is then mapped
    and unmapped afresh, which made a file's task 2.3x slower here (benchmarks/RESULTS.md).
    Workers started here keep glibc's defaults, as the sequential read has them. Worker
    logs stay quiet: a task's error reaches this process and is said once.
    """
    import dask
    from distributed import LocalCluster

    key = "distributed.nanny.pre-spawn-environ"
    environ = {k: v for k, v in dask.config.get(key, {}).items()
               if k != "MALLOC_TRIM_THRESHOLD_"}
    with dask.config.set({key: environ}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=":0", silence_logs=logging.CRITICAL)


def flows_dask(paths: Sequence[Path], options: FlowOptions | None = None, *,
               client: Any = None, skip_bad: bool = False) -> Any:
    """The flows of ``paths`` as a ``dask.dataframe``, one partition per file (in the
    sequential read's order), computed on ``client`` (default: the current one)."""
    import dask
    import dask.dataframe as dd

    from tracker.report.flows import flows_dataframe

    options = options or FlowOptions()
    files = ordered(paths)
    parts, state = [], None
    for i, path in enumerate(files):
        part = dask.delayed(read_part, pure=True)(path, state, options, i == len(files) - 1,
                                                  skip_bad)
        state = part.state
        parts.append(dask.delayed(flows_dataframe, pure=True)(part.flows))
    meta = flows_dataframe(FlowRecords.empty())
    # tunnel_parents holds tuples: Dask must not turn object columns into strings.
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_delayed(parts, meta=meta, verify_meta=False)
