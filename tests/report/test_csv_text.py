"""The compiled CSV writer (report/csv_text.py) gives the Arrow writer's bytes.

The Arrow path (export.flows_table) is checked against the DataFrame's CSV in
test_export.py; here the compiled loop is checked against Arrow: whole captures,
and each kind of cell on values chosen to hit its edges (times over the whole int64
range, durations below 1e-6 s, with 15 and 16 significant digits, negative).
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from tests.conftest import CAPTURES, tunnelled_traces
from tracker.flows import FlowOptions, FlowRecords
from tracker.pipeline import FlowRun
from tracker.report.csv_text import CODED, NONE, SECONDS, _write_rows, csv_rows, flows_csv
from tracker.report.export import flows_table, iso_text, write_csv
from tracker.report.writers import CsvLines, CsvWriter

SMALL = sorted(p for p in CAPTURES.glob("*.pcap*") if p.stat().st_size < 100_000)


def _records(path: object) -> FlowRecords:
    return FlowRecords.concat(list(FlowRun(path, FlowOptions()).finished()))


def _arrow_lines(records: FlowRecords) -> bytes:
    out = io.StringIO()
    write_csv(flows_table(records), out, header=False)
    return out.getvalue().encode()


@pytest.mark.parametrize("path", [*SMALL, CAPTURES / "office.pcap"], ids=lambda p: p.name)
def test_captures_give_the_arrow_bytes(path: object) -> None:
    records = _records(path)
    assert len(records)
    assert csv_rows(records) == _arrow_lines(records)


def test_tunnel_parents_and_ipv6_from_the_corpus() -> None:
    """One parent id is written by the loop; several ("3,7") need quotes: Arrow's writer."""
    written = 0
    for trace in tunnelled_traces():
        records = _records(trace)
        lines = csv_rows(records)
        several = bool((records.n_parents > 1).any())
        assert (lines is None) == several, trace
        if lines is not None:
            assert lines == _arrow_lines(records), trace
            written += int((records.n_parents == 1).sum())
    assert written > 0  # tunnel_parents text was compared, not only empty cells


def _one_column(kind: int, cells: np.ndarray, names: list[bytes] | None = None) -> bytes | None:
    """The loop's text of a single column of ``cells``."""
    names = names or [b""]
    values = np.ascontiguousarray(cells, dtype=np.int64).reshape(-1, 1)
    out = np.empty(len(cells) * 40, dtype=np.uint8)
    ends = np.cumsum([len(n) for n in names], dtype=np.int64)
    used = _write_rows(values, np.array([kind], np.int8), np.zeros(1, np.int64), ends,
                       np.frombuffer(b"".join(names) or b"\0", np.uint8), out)
    return None if used < 0 else out[:used].tobytes()


def _arrow_seconds(ns: np.ndarray) -> bytes:
    sink = io.BytesIO()
    pa_csv.write_csv(pa.table({"d": pa.array(ns / 1e9)}), sink,
                     pa_csv.WriteOptions(include_header=False))
    return sink.getvalue()


def test_durations_as_arrow_prints_the_seconds() -> None:
    rng = np.random.default_rng(3)
    ns = np.concatenate([
        np.arange(0, 1001), [1500, 10_000, 999_999_999, 1_000_000_000, 2_500_000_000],
        rng.integers(0, 10**15, 20_000),  # at most 15 digits: the loop's
        rng.integers(0, 10**15, 5_000) // 1000 * 1000,  # microsecond captures
        10**15 * rng.integers(1, 9_000, 2_000),  # round seconds, 11 days to 285 years
        -rng.integers(1, 10**12, 1_000)])
    assert _one_column(SECONDS, ns) == _arrow_seconds(ns)


def test_durations_with_16_digits_are_left_to_arrow() -> None:
    assert _one_column(SECONDS, np.array([10**15 + 1])) is None
    assert _one_column(SECONDS, np.array([10**15 - 1])) == _arrow_seconds(
        np.array([10**15 - 1]))


def test_times_and_codes() -> None:
    rng = np.random.default_rng(7)  # any int64 time, 1677 to 2262, as numpy prints it
    ns = np.concatenate([[0, 1, -1, NONE, 1_700_000_000_123_456_789],
                         rng.integers(NONE + 1, np.iinfo(np.int64).max, 20_000)])
    want = "".join(t + "\n" for t in iso_text(ns.view("M8[ns]"))).encode()
    assert _one_column(2, ns) == want  # ISO_TIME
    codes = np.array([1, NONE, 0, 2])
    assert _one_column(CODED, codes, [b"tcp", b"\xc3\xa9", b"udp"]) == b"\xc3\xa9\n\ntcp\nudp\n"


def test_writer_takes_lines_and_tables_alike() -> None:
    records = _records(CAPTURES / "office.pcap")
    half = len(records) // 2
    parts = [records.take(slice(0, half)), records.take(slice(half, len(records)))]
    by_lines, by_arrow = io.BytesIO(), io.BytesIO()
    for sink, make in ((by_lines, flows_csv), (by_arrow, flows_table)):
        writer = CsvWriter(sink)
        for part in parts:
            writer.write(make(part))
        writer.close()
    assert isinstance(flows_csv(parts[0]), CsvLines)
    assert by_lines.getvalue() == by_arrow.getvalue()
    assert by_lines.getvalue().count(b"flow_id,") == 1  # one header
