"""The pipeline layer (tracker/pipeline.py): the FlowTable fed with PacketBatches alone, any
FrameSource, carried tables, wall-clock expiry, and iter_flows against read_flows."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tracker
from tests.conftest import CAPTURES, CORPUS, corpus_traces, need_corpus, present
from tracker.decode import decode
from tracker.errors import OptionError, TrackerWarning
from tracker.flows import FlowOptions, FlowRecords, FlowTable
from tracker.flows.records import END_REASONS
from tracker.pipeline import FlowRun
from tracker.report.flows import flows_dataframe
from tracker.sources.files import open_capture
from tracker.sources.memory import MemorySource

SCENARIOS = sorted(p for p in CAPTURES.iterdir() if p.name.endswith((".pcap", ".pcapng", ".gz")))
CORPUS_TRACES = corpus_traces()


def _batches(path: Path, batch_bytes: int = 4 << 20) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrackerWarning)  # cut last records: kept, warned
        with open_capture(path, batch_bytes=batch_bytes) as reader:
            return list(reader)


def _table_flows(batches: list, options: FlowOptions, *, checksums: bool = True) -> pd.DataFrame:
    table = FlowTable(options)
    parts = [table.update(decode(fb, checksums=checksums), fb) for fb in batches]
    return flows_dataframe(FlowRecords.concat([*parts, table.flush()]))


@pytest.mark.corpus
@pytest.mark.parametrize("path", present([
    pytest.param(p, id=f"{p.parent.parent.name}/{p.parent.name}") for p in CORPUS_TRACES],
    CORPUS))
@pytest.mark.parametrize("verify", [False, True], ids=["checksums-off", "checksums-on"])
def test_table_from_packet_batches_alone_on_every_trace(path: Path, verify: bool) -> None:
    """The table fed with decode(frames) alone (and the frames, for the packets inside
    tunnels) gives the pipeline's flows, with checksums verified or
    not; unverified, the checksum column changes nothing."""
    need_corpus()
    options = FlowOptions(verify_checksums=verify)
    batches = _batches(path)
    direct = _table_flows(batches, options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrackerWarning)
        piped = tracker.read_flows(path, options=options)
    pd.testing.assert_frame_equal(direct, piped, check_categorical=False)
    if not verify:
        unverified = _table_flows(batches, options, checksums=False)
        pd.testing.assert_frame_equal(direct, unverified, check_categorical=False)


def test_verifying_table_refuses_unverified_packets() -> None:
    batches = _batches(CAPTURES / "tcp-handshake-fin.pcap")
    table = FlowTable(FlowOptions(verify_checksums=True))
    with pytest.raises(OptionError, match="checksums"):
        table.update(decode(batches[0], checksums=False))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_iter_flows_yields_the_rows_of_read_flows(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrackerWarning)
        whole = tracker.read_flows(path)
        # Tiny batches (a frame each; a few in the 5 MB office.pcap, 12 s otherwise):
        # flows end in many different batches.
        tiny = 64 if path.stat().st_size < 1_000_000 else 2048
        parts = list(tracker.iter_flows(open_capture(path, batch_bytes=tiny)))
    assert parts, "iter_flows yields at least one frame"
    assert all(list(p.columns) == list(whole.columns) for p in parts)
    joined = pd.concat(parts, ignore_index=True)
    assert len(joined) == len(whole)
    pd.testing.assert_frame_equal(joined.astype(object), whole.astype(object))


def test_iter_flows_of_a_capture_without_flows_is_one_empty_frame() -> None:
    empty = MemorySource([])
    parts = list(tracker.iter_flows(empty))
    assert len(parts) == 1 and parts[0].empty
    assert list(parts[0].columns) == list(tracker.describe_columns("flows")["name"])


def test_a_carried_table_continues_where_the_first_part_stopped() -> None:
    """Two parts of one capture, the table carried from the first run into the second
    (which starts from it and flushes at the end), give the flows of one run."""
    batches = _batches(CAPTURES / "tcp-port-reuse.pcap", batch_bytes=64)
    assert len(batches) > 3
    whole = flows_dataframe(FlowRecords.concat(list(FlowRun(MemorySource(batches),
                                                            FlowOptions()).finished())))
    first = FlowRun(MemorySource(batches[:2]), FlowOptions(), flush=False)
    ended_first = list(first.finished())
    assert first.table.open_flows >= 1  # the first part ends inside a connection
    second = FlowRun(MemorySource(batches[2:]), FlowOptions(), table=first.table)
    parts = FlowRecords.concat([*ended_first, *second.finished()])
    pd.testing.assert_frame_equal(flows_dataframe(parts), whole)


def test_wall_clock_source_expires_idle_flows_between_packets() -> None:
    """A source with a clock (as live capture) ends a UDP flow once the clock passes its
    60 s inactivity timeout, before the capture ends; its drops reach the summary."""
    batches = _batches(CAPTURES / "udp-request-response.pcap")
    last_ts = int(max(int(b.ts_ns.max()) for b in batches))
    clock = MemorySource(batches, clock=lambda: last_ts + 61 * 10**9, dropped=7)
    run = FlowRun(clock, FlowOptions())
    ended = [(len(packets), e) for packets, _, e in run]
    during = FlowRecords.concat([e for n, e in ended if n])
    assert len(during) == 1  # ended by the clock, in the batch's own step
    assert flows_dataframe(during)["end_reason"].tolist() == ["idle"]
    assert len(ended[-1][1]) == 0  # nothing left open at the end
    assert run.summary.dropped == 7
    assert "7 dropped by the kernel" in run.summary.line()
    without = FlowRun(MemorySource(batches), FlowOptions())
    assert flows_dataframe(FlowRecords.concat(list(without.finished())))[
        "end_reason"].tolist() == ["eof"]


def test_flows_frame_round_trips_through_parquet(tmp_path: Path) -> None:
    df = tracker.read_flows(CAPTURES / "tcp-port-reuse.pcap")
    assert df.attrs["summary"]["flows"] == 2
    out = tmp_path / "flows.parquet"
    df.to_parquet(out)
    back = pd.read_parquet(out)
    pd.testing.assert_frame_equal(back, df, check_categorical=False)
    assert back.attrs["summary"] == df.attrs["summary"]


def test_packets_frame_round_trips_through_parquet(tmp_path: Path) -> None:
    df = tracker.read_packets(CAPTURES / "ipv4-fragments.pcap")
    out = tmp_path / "packets.parquet"
    df.to_parquet(out)
    pd.testing.assert_frame_equal(pd.read_parquet(out), df, check_categorical=False)


def test_missing_values_are_na_never_empty_text() -> None:
    """history and service are <NA> where Zeek prints '-' (ICMP, unknown ports)."""
    df = tracker.read_flows(CAPTURES / "icmp-echo.pcap")
    assert (df["proto"] == "icmp").all()
    assert df["history"].isna().all() and df["service"].isna().all()
    for column in df.columns.drop("tunnel_parents"):  # tuples: () when there are none
        values = df[column].astype(object)
        assert not (values == "").any(), column
    assert (df["tunnel_parents"] == ()).all()


@pytest.mark.corpus
def test_no_empty_text_in_any_column_of_the_corpus_flows() -> None:
    need_corpus()
    for path in CORPUS_TRACES[::5]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TrackerWarning)
            df = tracker.read_flows(path)
        for column in df.select_dtypes(["category", "object"]).columns.drop("tunnel_parents"):
            assert not (df[column].astype(object) == "").any(), (path, column)


def test_read_packets_keeps_protocol_numbers() -> None:
    df = tracker.read_packets(CAPTURES / "icmp-echo.pcap")
    assert df["proto"].dtype == "Int16"
    assert set(df["proto"].dropna().tolist()) == {1}
    assert np.issubdtype(df["frame"].dtype, np.integer)


def _read_ahead_threads() -> list:
    import threading
    return [t for t in threading.enumerate() if t.name == "tracker-read-ahead"]


def test_a_file_run_reads_ahead_and_gives_the_table_path_flows() -> None:
    """A file (no wall clock) is decoded in a second thread: the same flows as the table
    fed batch by batch here, the same per-frame flow ids, and the thread is gone after."""
    path = CAPTURES / "office.pcap"
    batches = _batches(path, batch_bytes=1 << 14)
    assert len(batches) > 3  # several batches cross the thread
    run = FlowRun(open_capture(path, batch_bytes=1 << 14), FlowOptions())
    got = list(run)
    expected = _table_flows(batches, FlowOptions())
    pd.testing.assert_frame_equal(flows_dataframe(FlowRecords.concat([e for _, _, e in got])),
                                  expected)
    table = FlowTable(FlowOptions())
    for fb, (packets, ids, _) in zip(batches, got, strict=False):
        table.update(decode(fb), fb)
        assert len(packets) == len(fb) and (ids == table.flow_ids).all()
    assert not _read_ahead_threads()


def test_a_run_left_early_stops_its_read_ahead_thread() -> None:
    """Stopping after the first batch (Ctrl-C) ends the thread that reads ahead and
    flushes what was walked as ``interrupted``; so does dropping the run mid-way."""
    run = FlowRun(open_capture(CAPTURES / "office.pcap", batch_bytes=1 << 12), FlowOptions())
    it = iter(run)
    next(it)
    assert _read_ahead_threads()
    run.stop()
    rest = list(it)
    assert len(rest) == 1 and len(rest[0][0]) == 0  # the flush, nothing more read
    assert set(rest[0][2].end_reason.tolist()) == {END_REASONS.index("interrupted")}
    assert not _read_ahead_threads()
    it2 = iter(FlowRun(open_capture(CAPTURES / "office.pcap", batch_bytes=1 << 12),
                       FlowOptions()))
    next(it2)
    it2.close()  # a generator dropped mid-way
    assert not _read_ahead_threads()


def test_a_corrupt_record_after_good_batches_is_raised_after_them(tmp_path: Path) -> None:
    """The read-ahead thread hands a reading error over in order: the batches before it
    are walked and yielded, the open flows end as ``error``, then the error is raised."""
    data = (CAPTURES / "office.pcap").read_bytes()
    bad = tmp_path / "cut.pcap"
    bad.write_bytes(data[:len(data) // 2] + b"\xff" * 64 + data[len(data) // 2:])
    run = FlowRun(open_capture(bad, batch_bytes=1 << 12), FlowOptions())
    seen = []
    with pytest.raises(tracker.CaptureError):
        for packets, _, ended in run:
            seen.append((len(packets), ended))
    assert sum(n for n, _ in seen) > 0
    assert set(seen[-1][1].end_reason.tolist()) == {END_REASONS.index("error")}
    assert not _read_ahead_threads()
