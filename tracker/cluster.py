"""Many capture files on Dask (dask.distributed): the flows of reading them in order as one.

    >>> flows = tracker.read_flows(paths, jobs=2)                      # doctest: +SKIP
    >>> flows = tracker.read_flows(paths, scheduler="tcp://host:8786")  # doctest: +SKIP

Files are taken in the order of their first timestamps (rotated captures, as the
sequential read takes them). Each file is one task, run on a worker; a flow open at the
end of a file goes on in the next: the task returns its flow table's open state (its
open flows, timers, pending fragments and tunnel memory; FlowTable.__getstate__, a few
KB per open flow), and the next file's task starts from it. So the rows are exactly
the sequential read's, in its order, whatever the order tasks finish in, and a task
retried by Dask (a lost worker) computes the same result again from the same inputs.

The tasks of one chain follow each other: a file's task needs the state its predecessor
leaves (``benchmarks/RESULTS.md`` measures what that costs, and what running the
independent part of each file in parallel would take). Memory per worker is that of
reading one file.
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
from tracker.errors import CaptureError, OptionError
from tracker.flows import FlowOptions, FlowRecords, FlowTable
from tracker.pipeline import FlowRun
from tracker.report.summary import RunSummary
from tracker.sources.rotated import first_timestamp

Path = str | os.PathLike[str]


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


def read_part(path: str, state: bytes | None, options: FlowOptions, last: bool,
              skip_bad: bool, filter: str | None = None) -> Part:
    """Read one file from the carried ``state`` (None: the first file); flush at the last;
    ``filter``: a tcpdump expression, as read_flows'."""
    table = pickle.loads(state) if state is not None else FlowTable(options)
    bpf = None if filter is None else BpfFilter(filter)
    run = FlowRun(path, options, table=table, flush=last, bpf=bpf)
    parts: list[FlowRecords] = []
    try:
        parts.extend(run.finished())
    except (CaptureError, OSError) as err:
        if not skip_bad:
            raise
        # The file counts for nothing; at the end, the carried flows still end as they would.
        carried = pickle.loads(state) if state is not None else FlowTable(options)
        ended = carried.flush() if last else FlowRecords.empty()
        return Part(ended, pickle.dumps(carried), RunSummary(), str(err))
    return Part(FlowRecords.concat(parts), pickle.dumps(run.table), run.summary)


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
        from operator import attrgetter

        client, owned = self._client()
        try:
            files = ordered(self.paths)
            state = None  # a future of the open state each file leaves to the next
            futures = []
            for i, path in enumerate(files):
                part = client.submit(read_part, path, state, self.options, i == len(files) - 1,
                                     self.skip_bad, self.filter, pure=False,
                                     key=f"tracker-part-{i}-{id(self)}")
                state = client.submit(attrgetter("state"), part, pure=False,
                                      key=f"tracker-state-{i}-{id(self)}")
                futures.append(part)
            for i, future in enumerate(futures):
                yield self._take(future, files[i], i, len(files))
                futures[i] = None  # the worker may let it go
        finally:
            if owned:
                cluster = client.cluster  # None when joined by address
                client.close()
                if cluster is not None:
                    cluster.close()

    def _take(self, future: Any, path: str, i: int, n: int) -> FlowRecords:
        try:
            part: Part = future.result()
        except (CaptureError, OSError) as err:
            raise CaptureError(f"{err}") from None
        if part.error is not None:
            self.skipped.append(part.error)
            print(f"tracker: skipped {part.error}", file=sys.stderr)
        self._add(part.summary)
        self.summary.flows += len(part.flows)
        if self.progress:
            print(f"\rtracker: {i + 1}/{n} files, {self.summary.frames:,} frames",
                  end="\n" if i + 1 == n else "", file=sys.stderr, flush=True)
        return part.flows

    def _add(self, s: RunSummary) -> None:
        self.summary.frames += s.frames
        for name, count in s.status.items():
            self.summary.status[name] += count
        self.summary.evicted += s.evicted

    def _client(self) -> tuple[Any, bool]:
        """(client, whether this run started it and must close it)."""
        try:
            from distributed import Client
        except ImportError:
            raise OptionError("--jobs and --scheduler need Dask: pip install "
                              "'socket-pair-tracker[dask]' (./run setup installs it)") from None
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
