"""Streaming (issue 4): results do not depend on the batch size, and the flow table
lets finished flows go as it reads, so memory follows open flows, not the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO
from tracker.flows import FlowOptions, FlowRecords
from tracker.pipeline import FlowRun
from tracker.report.flows import flows_dataframe


@pytest.fixture(scope="module")
def short_flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30k packets of many short TCP flows, from the project's own generator."""
    out = tmp_path_factory.mktemp("synth") / "short.pcap"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "synth.py"), "-o", str(out),
                    "--packets", "30000", "--short-flows", "--quiet"], check=True, timeout=120)
    return out


# The capture spans about a second of packet time, so Zeek's 5 s delays become short
# ones here: a closed flow leaves the table 50 ms (of packet time) after its last packet.
QUICK = FlowOptions(tcp_close_delay=0.05, tcp_attempt_delay=0.2, tcp_syn_timeout=0.2,
                    tcp_session_timer=0.2, tcp_connection_linger=0.05, udp_inactivity=0.3,
                    tcp_inactivity=0.5)


def _run(path: Path, batch_bytes: int) -> tuple[pd.DataFrame, list[int], list[int]]:
    """Flows, and per batch: flows still open, flows ended so far."""
    run = FlowRun(path, QUICK, batch_bytes=batch_bytes)
    parts, open_now, ended = [], [], []
    for _, _, records in run:
        parts.append(records)
        open_now.append(run.table.open_flows)
        ended.append(sum(len(p) for p in parts))
    df = flows_dataframe(FlowRecords.concat(parts))
    return df.sort_values("flow_id", ignore_index=True), open_now, ended


def test_same_flows_whatever_the_batch_size(short_flows: Path) -> None:
    big, _, _ = _run(short_flows, 4 << 20)
    small, _, _ = _run(short_flows, 16 << 10)
    tiny, _, _ = _run(short_flows, 1 << 10)  # about 10 frames per batch
    assert len(big) > 1000
    pd.testing.assert_frame_equal(big, small)
    pd.testing.assert_frame_equal(big, tiny)


def test_finished_flows_leave_the_table_as_it_reads(short_flows: Path) -> None:
    df, open_now, ended = _run(short_flows, 16 << 10)
    assert len(open_now) > 20  # many batches
    # Most flows end by FIN or RST long before the end of the capture...
    assert (df["end_reason"].isin(["fin", "rst", "reuse", "idle"])).mean() > 0.5
    before_eof = ended[-2]  # the last item is the flush at end of file
    assert before_eof > 0.5 * len(df)
    # ...so the table never holds more than a fraction of all flows at once.
    assert max(open_now) < 0.5 * len(df)
    assert np.all(np.diff(ended) >= 0)
