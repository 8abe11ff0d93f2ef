"""CSV of flows straight from their records (export.flows_table) is the DataFrame's CSV.

The DataFrame path (flows_dataframe, then csv_frame) is the one the Zeek and tshark
conformance tests check; the records path must give the same bytes, and must not
load pandas at all, which is what it is for.
"""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import CAPTURES, REPO, tunnelled_traces
from tracker.flows import FlowOptions, FlowRecords
from tracker.pipeline import FlowRun
from tracker.report.export import (
    _ids_strings,
    _iso_strings,
    _strings,
    flows_table,
    iso_text,
    write_csv,
)
from tracker.report.flows import flows_dataframe

SMALL = sorted(p for p in CAPTURES.glob("*.pcap*") if p.stat().st_size < 100_000)


def _records(path: object) -> FlowRecords:
    return FlowRecords.concat(list(FlowRun(path, FlowOptions()).finished()))


def _both(records: FlowRecords) -> tuple[str, str]:
    via_frame, direct = io.StringIO(), io.StringIO()
    write_csv(flows_dataframe(records), via_frame, header=True)
    write_csv(flows_table(records), direct, header=True)
    return via_frame.getvalue(), direct.getvalue()


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.name)
def test_records_give_the_frames_csv(path: object) -> None:
    via_frame, direct = _both(_records(path))
    assert direct == via_frame


def test_tunnels_vlans_and_missing_values_too() -> None:
    """Corpus traces with tunnel parents (ids joined by ','), IPv6 and <NA> bytes."""
    tunnelled = 0
    for trace in tunnelled_traces():
        records = _records(trace)
        via_frame, direct = _both(records)
        assert direct == via_frame, trace
        tunnelled += int((records.n_parents > 0).sum())
    assert tunnelled > 0  # the tunnel_parents text was compared, not only empty cells


def test_text_columns_from_buffers() -> None:
    assert _strings(np.array(["", "ab", "c"])).to_pylist() == ["", "ab", "c"]
    assert _strings(["é", "", "xyz"]).to_pylist() == ["é", "", "xyz"]
    assert _strings(np.array([], dtype=str)).to_pylist() == []
    ns = np.array([0, 1, np.iinfo(np.int64).min, 1_700_000_000_123_456_789]).view("M8[ns]")
    assert _iso_strings(ns).to_pylist() == iso_text(ns).tolist() == [
        "1970-01-01T00:00:00.000000000Z", "1970-01-01T00:00:00.000000001Z", "",
        "2023-11-14T22:13:20.123456789Z"]
    rng = np.random.default_rng(7)  # any int64 time, 1677 to 2262: as numpy prints it
    ns = rng.integers(np.iinfo(np.int64).min + 1, np.iinfo(np.int64).max, 10_000).view("M8[ns]")
    assert _iso_strings(ns).to_pylist() == iso_text(ns).tolist()
    ids = np.empty(3, dtype=object)
    ids[:] = [(), (3, 17), ()]
    assert _ids_strings(ids).to_pylist() == ["", "3,17", ""]


def test_csv_output_loads_neither_pandas_nor_scipy(tmp_path: object) -> None:
    """The command in a process of its own (standalone), compiled (office.pcap is over
    SMALL_INPUT): no pandas, and numba's BLAS probe did not import scipy."""
    out = f"{tmp_path}/flows.csv"
    code = ("import sys; from tracker.cli import main; "
            f"rc = main(['read', '{CAPTURES / 'office.pcap'}', '--format', 'csv', "
            f"'-o', '{out}', '-q'], standalone=True); "
            "print(rc, 'pandas' in sys.modules, 'scipy' in sys.modules, 'numba' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, check=False)
    assert done.stdout.split() == ["0", "False", "False", "True"], done.stderr[-500:]
    with open(out) as f:
        assert f.readline().startswith("flow_id,first_ts,last_ts,duration,proto,")
