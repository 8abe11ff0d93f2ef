#!/usr/bin/env python3
"""Flows of many files on Dask: wall time on 1 and 2 workers, the chain's task per file,
peak RSS per worker, and the size of the state carried across each file boundary.

    .venv/bin/python benchmarks/cluster.py CAPTURE [FILES]   # default 20 files

CAPTURE (a classic pcap, e.g. gen_pcap --packets 5000000 --seed 3) is split at record
boundaries into FILES parts next to it. Then, each best of 2, interleaved: the cluster
read (tracker/cluster.py) on a LocalCluster of 1 worker process, of 2 walking each file
from the carried state (one file at a time, and in parts of cluster.BLOCK consecutive
files, the default, each prepared and walked in one task), and of 2 walking files
alone and stitching them (flows/stitch.py); and flows_dask's DataFrame on 1 and 2
workers, its partitions counted where they are (``map_partitions(len)``; its speed-up is
over its own 1 worker). Each cluster is warmed by a read of 2 files per worker (a worker
loads the compiled code once; a long job pays it once per worker). The flow counts are
checked equal to the sequential read's (tests/test_cluster.py checks the rows). The
chain task is walk_part, which each part waits for in turn (its time per file is shown);
the chain's waits are the time between one walk_part's end and the next one's start (the
state handed over, or the next part not prepared yet); busy is each worker's compute time in the tasks; peak RSS per
worker is each worker's own high-water mark after the run (VmHWM: peak_rss_mb); CPU is
what the workers and this process (the client, the scheduler and the nannies of a
LocalCluster) used during the read, from getrusage; the boundary state is the pickled
open state after each part.

Then the speed-up read in pairs (``paired``): a cluster of 1 worker and one of 2 both
started, 10 reads of each in turn, medians (the best of 2 above moves with the noise of
the hour the reads fall in). The last line is this machine's ceiling without Dask: 1 process, then 2 started together,
each reading and walking its consecutive half of the files from its own table (the second
half's flows are not the sequential read's: only the work is the same), best of 3. It
is what two cores give this work with no chain and no coordination.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import struct
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import tracker
from tracker.cluster import (
    BLOCK,
    STITCH_FROM_WORKERS,
    ClusterRun,
    flows_dask,
    prepare_part,
    walk_part,
)
from tracker.flows import FlowOptions, FlowRecords


def split(path: Path, parts: int, folder: Path | None = None) -> list[Path]:
    """The classic pcap ``path`` cut at record boundaries into ``parts`` files, in order,
    named ``<stem>-partNN.pcap`` in ``folder`` (default: beside it; existing ones kept)."""
    data = path.read_bytes()
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    starts, pos = [], 24
    while pos + 16 <= len(data):
        starts.append(pos)
        pos += 16 + struct.unpack(endian + "I", data[pos + 8:pos + 12])[0]
    starts.append(pos)
    per = -(-(len(starts) - 1) // parts)
    files = []
    for i in range(parts):
        out = (folder or path.parent) / f"{path.stem}-part{i:02d}.pcap"
        a, b = starts[min(i * per, len(starts) - 1)], starts[min((i + 1) * per, len(starts) - 1)]
        if not out.exists():
            out.write_bytes(data[:24] + data[a:b])
        files.append(out)
    return files


def peak_rss_mb() -> float:
    """This process's own peak RSS: VmHWM, the high-water mark of its memory since it
    began. Not ru_maxrss: a worker process is forked and exec'd from this one, and Linux
    keeps the high-water mark across exec, so its ru_maxrss is at least what this process
    held when the cluster started (458 MB against a VmHWM of 317 in one check, after this
    process had run the DataFrame cases). ru_maxrss where /proc is not there."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status
                        if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    """User and system CPU seconds of this process so far."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


_START: Any = None  # the Barrier that starts independent()'s processes together


def _ready(start: Any) -> None:
    global _START
    _START = start


def walk_share(files: list[Path]) -> float:
    """Seconds to prepare and walk ``files`` in order from one table, once every process
    is ready (compiled code loaded first, as in a warmed worker)."""
    options = FlowOptions()
    prepare_part(str(files[0]), options, False)
    _START.wait()
    began = time.perf_counter()
    previous = None
    for i, f in enumerate(files):
        previous = walk_part(prepare_part(str(f), options, False), previous, options,
                             i == len(files) - 1, keep="share")
    return time.perf_counter() - began


def independent(files: list[Path], processes: int) -> float:
    """Wall seconds of ``processes`` processes each walking its consecutive share."""
    per = -(-len(files) // processes)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context, initializer=_ready,
                             initargs=(context.Barrier(processes),)) as pool:
        runs = [pool.submit(walk_share, files[i:i + per]) for i in range(0, len(files), per)]
        return max(r.result() for r in runs)


@contextmanager
def how(workers: int, mode: str) -> Iterator[None]:
    """tracker.cluster's settings for ``mode`` on ``workers``, its defaults again after
    (a later case, and ``paired``, read with the defaults)."""
    import tracker.cluster

    tracker.cluster.STITCH_FROM_WORKERS = workers if mode == "stitch" else workers + 1
    tracker.cluster.BLOCK = BLOCK if mode == "blocks" else 1
    try:
        yield
    finally:
        tracker.cluster.STITCH_FROM_WORKERS, tracker.cluster.BLOCK = STITCH_FROM_WORKERS, BLOCK


def on_cluster(files: list[Path], workers: int, mode: str
               ) -> tuple[float, list[float], int, float, float, list[float], float, float]:
    """(wall s, peak RSS per worker, flows, mean ms of the chain's per-file tasks, s the
    chain stood between two of them, s each worker computed, CPU s of the workers, CPU s
    of this process)."""
    import distributed

    from tracker.cluster import local_cluster

    with how(workers, mode), local_cluster(workers) as cluster, \
            distributed.Client(cluster) as client:
        # Warm workers, as in a long job: compiled code loaded in every worker process.
        list(ClusterRun(files[:2 * workers], FlowOptions(), client=client).finished())
        if mode == "dataframe":
            flows_dask(files[:2 * workers], client=client).map_partitions(len).compute()
        workers_cpu, own_cpu = sum(client.run(cpu_s).values()), cpu_s()
        with distributed.get_task_stream(client) as stream:
            start = time.perf_counter()
            if mode == "dataframe":  # the partitions made and counted where they are
                count = int(flows_dask(files, client=client).map_partitions(len).compute().sum())
            else:
                count = len(FlowRecords.concat(list(
                    ClusterRun(files, FlowOptions(), client=client).finished())))
            wall = time.perf_counter() - start
        own_cpu = cpu_s() - own_cpu
        workers_cpu = sum(client.run(cpu_s).values()) - workers_cpu
        rss = sorted(client.run(peak_rss_mb).values())
    computed = [(s["start"], s["stop"], str(task["key"]), task["worker"])
                for task in stream.data for s in task["startstops"] if s["action"] == "compute"]
    walks = sorted((a, b) for a, b, key, _ in computed if "walk" in key)
    chain = [b - a for a, b in walks]
    # The chain's waits: the state handed over, or the next file not yet prepared.
    waits = sum(walks[i + 1][0] - walks[i][1] for i in range(len(walks) - 1))
    busy: dict[str, float] = {}
    for a, b, _, worker in computed:
        busy[worker] = busy.get(worker, 0.0) + b - a
    return (wall, rss, count, 1000 * sum(chain) / max(1, len(files)), waits,
            sorted(busy.values()), workers_cpu, own_cpu)


def paired(files: list[Path], reads: int) -> tuple[list[float], list[float]]:
    """Wall seconds of ``reads`` reads of ``files`` on a cluster of 1 worker and on one of
    2 (the default parts), both started first and read in turn: a pair of reads meets
    the same moment of the machine's noise, which on this shared machine moves a lone
    read by 30 % from one hour to the next."""
    import distributed

    from tracker.cluster import local_cluster

    walls: tuple[list[float], list[float]] = ([], [])
    with local_cluster(1) as c1, distributed.Client(c1) as one, \
            local_cluster(2) as c2, distributed.Client(c2) as two:
        for client in (one, two):  # warmed: compiled code loaded in every worker
            list(ClusterRun(files[:4], FlowOptions(), client=client).finished())
        for _ in range(reads):
            for client, out in zip((one, two), walls):
                start = time.perf_counter()
                for _flows in ClusterRun(files, FlowOptions(), client=client).finished():
                    pass
                out.append(time.perf_counter() - start)
    return walls


def parse_args(argv: list[str]) -> tuple[Path, int]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("capture", type=Path, help="a classic pcap to split into FILES parts")
    p.add_argument("files", type=int, nargs="?", default=20, help="parts (default 20)")
    a = p.parse_args(argv)
    if not a.capture.is_file() or a.files < 1:
        p.error(f"{a.capture}: expected a pcap file and a positive number of parts")
    return a.capture, a.files


def main() -> int:
    capture, pieces = parse_args(sys.argv[1:])
    # Split in a child process: this one, the client, never holds the whole capture.
    with ProcessPoolExecutor(1) as pool:
        files = pool.submit(split, capture, pieces).result()
    cases: dict[tuple[int, str], list] = {(1, "state"): [], (2, "state"): [],
                                          (2, "blocks"): [], (2, "stitch"): [],
                                          (1, "dataframe"): [], (2, "dataframe"): []}
    for _ in range(2):  # interleaved: the machine's noise hits every case alike
        for (workers, mode), runs in cases.items():
            runs.append(on_cluster(files, workers, mode))
    singles, doubles = paired(files, 10)
    ceiling: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(3):
        for processes, walls in ceiling.items():
            walls.append(independent(files, processes))
    start = time.perf_counter()
    sequential = tracker.read_flows(files)
    seq_wall = time.perf_counter() - start
    sizes, table, parts = [], None, []
    for i, f in enumerate(files):
        prepared = prepare_part(str(f), FlowOptions(), False)
        part = walk_part(prepared, table, FlowOptions(), i == len(files) - 1)
        table = part.state
        parts.append(part.flows)
        assert isinstance(table, bytes)  # no table kept: the state pickled
        sizes.append(len(table))
    # Imported here, not above: each local worker process starts by importing this script
    # again (multiprocessing's spawn), and pandas at the top made every worker 60 MB
    # larger than the CLI's (benchmarks/RESULTS.md).
    from tracker.report.flows import flows_dataframe

    assert len(flows_dataframe(FlowRecords.concat(parts))) == len(sequential)
    print(f"{capture.name} in {len(files)} files: {len(sequential):,} flows; sequential "
          f"read_flows {seq_wall:.1f} s\n")
    print("| workers | files | wall s (best of 2) | speed-up over 1 worker | "
          "chain task per file ms | chain waits s | busy per worker s | "
          "CPU s: workers, this process | peak RSS per worker MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (workers, mode), runs in cases.items():
        wall, rss, n, chain, waits, busy, workers_cpu, own_cpu = min(runs)
        assert n == len(sequential)
        one = min(cases[(1, "dataframe" if mode == "dataframe" else "state")])[0]
        how = {"state": "walked from the carried state", "stitch": "walked alone, stitched",
               "blocks": f"walked from the carried state, parts of {BLOCK} (the default)",
               "dataframe": "flows_dask, partitions counted"}[mode]
        print(f"| {workers} | {how} | {wall:.2f} | {one / wall:.2f} | {chain:.0f} | "
              f"{waits:.2f} | {', '.join(f'{b:.2f}' for b in busy)} | "
              f"{workers_cpu:.2f}, {own_cpu:.2f} | {', '.join(f'{r:.0f}' for r in rss)} |")
    print(f"\nboundary state per file (pickled open flows, timers, fragments): "
          f"min {min(sizes[:-1]) / 1e3:.0f} KB, max {max(sizes[:-1]) / 1e3:.0f} KB, "
          f"mean {sum(sizes[:-1]) / (len(sizes) - 1) / 1e3:.0f} KB")
    one, two = statistics.median(singles), statistics.median(doubles)
    print(f"paired, 10 reads each on a cluster of 1 and one of 2 workers read in turn: "
          f"medians {one:.2f} and {two:.2f} s = {one / two:.2f}x (best {min(singles):.2f} "
          f"and {min(doubles):.2f} s; median of the pairs' ratios "
          f"{statistics.median(a / b for a, b in zip(singles, doubles)):.2f}x)")
    alone, pair = min(ceiling[1]), min(ceiling[2])
    print(f"without Dask (the ceiling): 1 process {alone:.2f} s, 2 processes {pair:.2f} s "
          f"= {alone / pair:.2f}x (best of 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
