"""Flows on Dask: a real cluster of worker processes gives the sequential read's rows.

Every test starts real dask.distributed processes (a LocalCluster of processes, or
``dask scheduler`` and ``dask worker`` commands); captures are split at record
boundaries into files given in shuffled order. The oracle is the sequential read of the
same files (``tracker.read_flows(paths)``), whose rows must come out identical, in the
same order, every column (flow ids too).
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import tracker
from benchmarks.cluster import split as split_pcap
from tests.conftest import CAPTURES, CORPUS, corpus_traces
from tracker.cluster import ClusterRun, Part, flows_dask, split_parts
from tracker.errors import CaptureError
from tracker.flows import FlowOptions, FlowRecords
from tracker.pipeline import FlowRun
from tracker.report.flows import flows_dataframe
from tracker.report.summary import RunSummary

distributed = pytest.importorskip("distributed", reason="Dask is not installed (./run setup)")
GEN_PCAP = Path(__file__).resolve().parents[1].parent / "shared" / "tools" / "gen_pcap.py"


def split(path: Path, parts: int, folder: Path) -> list[Path]:
    """The classic pcap ``path`` cut into ``parts`` files at record boundaries, returned in
    a shuffled order (the reader must order them by their first timestamps)."""
    files = split_pcap(path, parts, folder)
    return files[1::2] + files[::2]


def generated(path: Path, packets: int, seed: int) -> Path:
    """A capture of ``packets`` made by the shared generator at ``path`` (skip without it)."""
    if not GEN_PCAP.exists():
        pytest.skip(f"the shared generator is absent: expected it at {GEN_PCAP}")
    subprocess.run([sys.executable, str(GEN_PCAP), "-o", str(path), "--packets", str(packets),
                    "--seed", str(seed), "--quiet"], check=True)
    return path


def same_rows(a: pd.DataFrame, b: pd.DataFrame, *, text_categories: bool = False) -> None:
    """Equal rows in the same order, every column (flow ids too). ``text_categories``:
    the categories' own dtype may differ (Dask builds them as pyarrow strings)."""
    assert len(a) == len(b) > 0
    a, b = (x.reset_index(drop=True) for x in (a, b))
    if text_categories:
        a, b = (x.apply(lambda c: c.astype(object) if c.dtype == "category" else c)
                for x in (a, b))
    pd.testing.assert_frame_equal(a, b)


@pytest.fixture(autouse=True)
def stitching(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers walk files alone and stitch them, as three or more do by default."""
    monkeypatch.setattr(tracker.cluster, "STITCH_FROM_WORKERS", 2)


# The ways two workers can go: files walked alone and stitched (three or more workers'
# default), or walked from the carried state (two workers' default) in parts of
# consecutive files, each prepared and walked in one task (cluster.BLOCK; 2 here).
MODES = pytest.mark.parametrize("mode", ["stitched", "blocks"])


def use(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if mode == "blocks":
        monkeypatch.setattr(tracker.cluster, "STITCH_FROM_WORKERS", 3)
        monkeypatch.setattr(tracker.cluster, "BLOCK", 2)


@pytest.fixture(scope="module")
def client() -> Iterator[distributed.Client]:
    import logging

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.CRITICAL
                                  ) as cluster, distributed.Client(cluster) as c:
        yield c


@MODES
def test_split_capture_gives_the_sequential_rows(client: distributed.Client, tmp_path: Path,
                                                 mode: str, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    use(mode, monkeypatch)
    files = split(CAPTURES / "office.pcap", 6, tmp_path)
    sequential = tracker.read_flows(files)
    on_dask = tracker.read_flows(files, client=client)
    same_rows(sequential, on_dask)
    assert on_dask.attrs["summary"]["frames"] == 8197  # captures/README.md
    # Flows span the boundaries: reading file by file would give other rows.
    alone = pd.concat([tracker.read_flows(f) for f in sorted(files)], ignore_index=True)
    assert len(alone) != len(sequential)


@MODES
def test_generated_capture_in_20_files(client: distributed.Client, tmp_path: Path, mode: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    use(mode, monkeypatch)
    whole = generated(tmp_path / "gen.pcap", 60_000, seed=3)
    files = split(whole, 20, tmp_path)
    same_rows(tracker.read_flows(whole), tracker.read_flows(files, client=client))


@MODES
def test_an_open_flow_cap_evicts_as_the_sequential_read(client: distributed.Client,
                                                        tmp_path: Path, mode: str,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """--max-open-flows on a cluster: the one table carried from file to file holds the
    cap, so the same flows are evicted at the same packets (stitching is off under a
    cap: flows/stitch.py)."""
    use(mode, monkeypatch)
    files = split(CAPTURES / "office.pcap", 6, tmp_path)
    sequential = tracker.read_flows(files, max_open_flows=20)
    assert (sequential["end_reason"] == "evicted").sum() > 100
    on_dask = tracker.read_flows(files, client=client, max_open_flows=20)
    same_rows(sequential, on_dask)
    assert on_dask.attrs["summary"]["evicted"] == (sequential["end_reason"] == "evicted").sum()


@pytest.mark.corpus
@MODES
def test_split_corpus_traces(client: distributed.Client, tmp_path: Path, mode: str,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Real traces with fragments, tunnels and long connections, each cut into 4."""
    use(mode, monkeypatch)
    traces = [t for t in corpus_traces() if t.suffix == ".pcap" and t.stat().st_size > 20_000
              and t.read_bytes()[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4")]
    if not traces:
        pytest.skip(f"the shared corpus is absent: expected it at {CORPUS}")
    for trace in traces[:: max(1, len(traces) // 6)]:
        folder = tmp_path / trace.parent.parent.name / trace.parent.name
        folder.mkdir(parents=True)
        files = split(trace, 4, folder)
        same_rows(tracker.read_flows(trace), tracker.read_flows(files, client=client))


@MODES
def test_a_killed_worker_changes_nothing(tmp_path: Path, mode: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL to a worker process while the chain runs: Dask recomputes what it held
    (with blocks, the killed worker's kept table too)."""
    import logging

    use(mode, monkeypatch)

    files = split(CAPTURES / "office.pcap", 12, tmp_path)
    sequential = tracker.read_flows(files)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.CRITICAL
                                  ) as cluster, distributed.Client(cluster) as c:
        pids = list(c.run(os.getpid).values())
        run = ClusterRun(files, FlowOptions(), client=c)
        parts = []
        for i, records in enumerate(run.finished()):
            parts.append(records)
            if i == 2:
                os.kill(pids[0], signal.SIGKILL)
        assert os.getpid() not in pids
    same_rows(sequential, flows_dataframe(FlowRecords.concat(parts)))


def test_workers_started_by_dask_reuse_large_arrays(tmp_path: Path) -> None:
    """Workers started with Dask's defaults (the nanny sets MALLOC_TRIM_THRESHOLD_=65536,
    as for any `dask worker`) map every array over 128 KB afresh and fault its pages in
    each time; once a task of the read ran there, a 3 MB array made and dropped 20
    times faults its 768 pages in about once (cluster.reused_allocations). Under 4 MB:
    from there numpy asks the kernel for huge pages, which fault 2 MB at a time when
    the kernel has them free, and so made the count before the read depend on the
    machine's memory at the time."""
    import logging

    def faults() -> int:
        """Minor page faults of making and dropping a 3 MB array 20 times."""
        import resource

        import numpy as np

        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            np.ones(3 << 17)
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    files = split(CAPTURES / "office.pcap", 2, tmp_path)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.CRITICAL
                                  ) as cluster, distributed.Client(cluster) as c:
        assert set(c.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()) == {"65536"}
        before = next(iter(c.run(faults).values()))
        tracker.read_flows(files, client=c)
        after = next(iter(c.run(faults).values()))
    assert before > 10_000  # each array mapped afresh: 20 x 768 = 15,360 pages
    assert after < 3 * 768


def test_a_task_its_workers_die_in_is_one_error(tmp_path: Path) -> None:
    """A worker SIGKILLed while it reads a file, on a cluster that allows no retry: Dask
    gives up on the task (KilledWorker); the read raises a ClusterError naming the file,
    which the CLI prints as one line, not Dask's traceback."""
    import logging

    import dask

    # a prepare of ~1 s: long enough to be killed in
    big = generated(tmp_path / "big.pcap", 400_000, seed=5)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                           dashboard_address=":0",
                                           silence_logs=logging.CRITICAL)
    with cluster, distributed.Client(cluster) as c:
        pid = next(iter(c.run(os.getpid).values()))
        run = ClusterRun([big], FlowOptions(), client=c)
        flows = run.finished()
        deadline = time.monotonic() + 60

        def kill_once_running() -> None:
            while not any(c.processing().values()):
                assert time.monotonic() < deadline
                time.sleep(0.01)
            time.sleep(0.2)
            os.kill(pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_once_running)
        killer.start()
        with pytest.raises(tracker.ClusterError, match=r"big\.pcap: the cluster did not "
                           r"finish reading it \(KilledWorker"):
            list(flows)
        killer.join()


@MODES
def test_a_bad_file_in_the_middle(client: distributed.Client, tmp_path: Path, mode: str,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that is not a capture stops the read with one line naming it, or with
    skip_bad is reported and left out (in blocks: in the middle of a part)."""
    use(mode, monkeypatch)
    files = sorted(split(CAPTURES / "office.pcap", 4, tmp_path))
    bad = tmp_path / "office-01b.pcap"
    bad.write_bytes(b"this is not a capture file at all")
    with pytest.raises(CaptureError, match="office-01b.pcap: not a capture"):
        tracker.read_flows([*files, bad], client=client)
    run = ClusterRun([*files, bad], FlowOptions(), client=client, skip_bad=True)
    flows = flows_dataframe(FlowRecords.concat(list(run.finished())))
    same_rows(tracker.read_flows(files), flows)
    assert len(run.skipped) == 1 and "office-01b.pcap" in run.skipped[0]


def test_parts_of_the_chain() -> None:
    """One file each, or a first block of file 0 alone then blocks of ``block``."""
    assert split_parts(3, 1) == [[0], [1], [2]]
    assert split_parts(7, 3) == [[0], [1, 2, 3], [4, 5, 6]]
    assert split_parts(6, 2) == [[0], [1, 2], [3, 4], [5]]
    assert split_parts(1, 3) == [[0]]
    assert split_parts(0, 3) == []


def test_held_bytes_counts_each_buffer_once() -> None:
    """An array and its views count as the array's 8,000 bytes, once; bytes by their
    length; lists, tuples, dicts and dataclasses are looked into."""
    import numpy as np

    from tracker.cluster import held_bytes

    whole = np.zeros(1000)
    assert held_bytes([whole, whole[:10], {"again": (whole,)}]) == 8000
    assert held_bytes(whole[::2]) == 8000  # a view holds its whole base
    assert held_bytes(Part(FlowRecords.empty(), b"x" * 300, RunSummary())) == 300
    assert held_bytes("text") == 0


def test_task_results_weigh_what_they_hold(tmp_path: Path) -> None:
    """Dask weighs a part's prepared files and a walk's Part (its placement and memory
    accounting) about as their pickles, which carry the same arrays: not the few bytes
    of a dataclass's shell."""
    from dask.sizeof import sizeof

    from tracker.cluster import prepare_files, walk_part

    files = [str(f) for f in split(generated(tmp_path / "g.pcap", 30_000, seed=2), 3, tmp_path)]
    options = FlowOptions()
    prepared = prepare_files(files, options, False)
    part = walk_part(prepared, None, options, False, None, True)
    for result in (prepared, prepared[0], part):
        pickled = len(pickle.dumps(result))
        assert pickled > 100_000
        assert 0.8 * pickled <= sizeof(result) <= 1.2 * pickled


def _interrupted_prefix(files: list[Path], k: int) -> pd.DataFrame:
    """The sequential read of the first ``k`` files stopped there, as Ctrl-C stops it:
    the flows still open end 'interrupted' (FlowRun.stop, SEMANTICS.md end_reason)."""
    run = FlowRun(files[:k], FlowOptions(), flush=False)
    return flows_dataframe(FlowRecords.concat([*run.finished(), run.table.flush("interrupted")]))


@pytest.mark.parametrize(("mode", "taken"), [("stitched", 3), ("blocks", 5)])
def test_stop_ends_after_the_part_being_taken(client: distributed.Client, tmp_path: Path,
                                              mode: str, taken: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """ClusterRun.stop() (the CLI's Ctrl-C) while the third part of 6 files is taken:
    the flows of the files taken, those open after them ended 'interrupted', as the
    sequential read stopped there gives them. A part is a file, or in blocks of 2 after
    file 0 alone: {0}, {1, 2}, {3, 4}, so 5 files are taken."""
    use(mode, monkeypatch)
    files = sorted(split(CAPTURES / "office.pcap", 6, tmp_path))
    run = ClusterRun(files, FlowOptions(), client=client)
    parts = []
    for i, records in enumerate(run.finished()):
        parts.append(records)
        if i == 2:
            run.stop()
    assert len(parts) == 4  # three parts, then the flows open after them
    expected = _interrupted_prefix(files, taken)
    got = flows_dataframe(FlowRecords.concat(parts))
    same_rows(expected, got)
    assert (got["end_reason"] == "interrupted").sum() > 0
    assert run.stopped == "interrupted" and run.summary.flows == len(expected)


def _sigint_ignored(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn"))
    return bool(int(mask, 16) & 1 << (signal.SIGINT - 1))


def test_ctrl_c_at_the_terminal(tmp_path: Path) -> None:
    """SIGINT to the whole process group, as Ctrl-C at a terminal sends it, once the
    local workers are up: exit 130, no traceback (the workers ignore it), and the
    output holds the files read, their open flows ended 'interrupted'."""
    files = sorted(split(CAPTURES / "office.pcap", 12, tmp_path))
    out = tmp_path / "flows.csv"
    proc = subprocess.Popen([sys.executable, "-m", "tracker", "read", "--jobs", "2",
                             "--format", "csv", "-o", str(out), *map(str, files)],
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        # The workers start while this process ignores SIGINT; then the run begins.
        while not _sigint_ignored(proc.pid):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.002)
        while _sigint_ignored(proc.pid):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.002)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted; everything read so far" in err
    frames = int(err.split("tracker: ")[1].split(" frames")[0])
    sizes = [len(tracker.read_packets(f)) for f in files]
    k = next(k for k in range(1, len(files)) if sum(sizes[:k]) == frames)
    expected = _interrupted_prefix(files, k)
    rows = pd.read_csv(out)
    assert rows["flow_id"].tolist() == expected["flow_id"].tolist()
    assert rows["end_reason"].tolist() == expected["end_reason"].astype(str).tolist()
    assert rows["orig_pkts"].tolist() == expected["orig_pkts"].tolist()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_flows_as_a_dask_dataframe(client: distributed.Client, tmp_path: Path) -> None:
    files = split(CAPTURES / "office.pcap", 5, tmp_path)
    ddf = flows_dask(files)
    assert ddf.npartitions == 5  # files walked alone and stitched: one task a file
    same_rows(tracker.read_flows(files), ddf.compute(), text_categories=True)


def test_read_flows_dask_takes_read_flows_filter_and_options(client: distributed.Client,
                                                               tmp_path: Path) -> None:
    """The public function: a tcpdump filter and a flow option give read_flows' rows for
    the same; a misspelled option, a bad filter or standard input is an OptionError
    before any task."""
    files = split(CAPTURES / "office.pcap", 4, tmp_path)
    ddf = tracker.read_flows_dask(files, filter="tcp", tcp_inactivity=30)
    expected = tracker.read_flows(files, filter="tcp", tcp_inactivity=30)
    assert set(expected["proto"].astype(str)) == {"tcp"}
    same_rows(expected, ddf.compute(), text_categories=True)
    for bad in ({"filter": "tcp port"}, {"tcp_inactivty": 30}):
        with pytest.raises(tracker.OptionError):
            tracker.read_flows_dask(files, **bad)
    with pytest.raises(tracker.OptionError, match="reads capture files"):
        tracker.read_flows_dask("-")


@pytest.mark.parametrize("stitched", [True, False])
def test_a_dask_dataframe_of_20_files(client: distributed.Client, tmp_path: Path,
                                      stitched: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """flows_dask's graph (prepares in parallel, gated; a chain of walks, walked from the
    carried state or stitched) gives the sequential rows, partition by partition."""
    if not stitched:  # two workers' default
        monkeypatch.setattr(tracker.cluster, "STITCH_FROM_WORKERS", 3)
    whole = generated(tmp_path / "gen.pcap", 60_000, seed=5)
    files = split(whole, 20, tmp_path)
    ddf = flows_dask(files, client=client)
    sizes = ddf.map_partitions(len).compute().tolist()
    sequential = tracker.read_flows(whole)
    assert len(sizes) == (20 if stitched else 8)  # file 0, then 19 files in parts of 3
    assert sum(sizes) == len(sequential)
    same_rows(sequential, ddf.compute(), text_categories=True)


def _dask(*args: str) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("dask")
    return subprocess.Popen([str(exe), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def test_scheduler_and_workers_as_separate_processes(tmp_path: Path) -> None:
    """`dask scheduler` and `dask worker` commands, and the CLI joining them with
    --scheduler: the CSV is byte for byte the sequential one; a directory with
    --format parquet gets a dataset partitioned by date and hour."""
    files = split(CAPTURES / "office.pcap", 6, tmp_path)
    info = tmp_path / "scheduler.json"
    procs = [_dask("scheduler", "--scheduler-file", str(info), "--port", "0",
                   "--dashboard-address", ":0")]
    try:
        deadline = time.time() + 60
        while not info.exists() and time.time() < deadline:
            time.sleep(0.2)
        procs.append(_dask("worker", "--scheduler-file", str(info), "--nworkers", "2",
                           "--nthreads", "1", "--no-dashboard"))
        with distributed.Client(scheduler_file=str(info)) as c:
            c.wait_for_workers(2, timeout=60)
            address = c.scheduler.address
        cli = [sys.executable, "-m", "tracker", "read", "-q", "--format", "csv"]
        subprocess.run([*cli, "-o", str(tmp_path / "a.csv"), *map(str, files)], check=True)
        subprocess.run([*cli, "--scheduler", address, "-o", str(tmp_path / "b.csv"),
                        *map(str, files)], check=True)
        assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
        dataset = tmp_path / "dataset"
        dataset.mkdir()
        subprocess.run([*cli[:-2], "--format", "parquet", "--scheduler", address, "-o",
                        str(dataset), *map(str, files)], check=True)
        parts = sorted(p.relative_to(dataset) for p in dataset.rglob("*.parquet"))
        assert parts and all(str(p).startswith("date=2023-11-14/hour=") for p in parts)
        back = pd.read_parquet(dataset)
        assert len(back) == 1135 and not list(dataset.glob(".tracker-*"))
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=30)


@pytest.mark.parametrize(("address", "said"), [
    ("tcp://127.0.0.1:9", "cannot connect"),  # nothing listens there (port 9: discard)
    ("127.0.0.1:9", "cannot connect"),  # Dask's tcp:// by default: refused at once too
    ("nonsense", "not an address Dask can reach (missing port number"),
    ("http://127.0.0.1:9", "not an address Dask can reach (unknown address scheme 'http'"),
    ("tcp://127.0.0.1:99999", "not an address Dask can reach (Port out of range"),
])
def test_no_such_scheduler_is_one_line(address: str, said: str) -> None:
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "tracker", "read", "--scheduler",
                          address, str(CAPTURES / "icmp-echo.pcap")],
                         check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert f"--scheduler {address}: {said}" in out.stderr.strip().splitlines()[-1]
    assert "Traceback" not in out.stderr
    assert time.monotonic() - start < 9  # not the Client's 10 s of retries


