"""A flow table's open state carried from one part of a capture to the next (rule 7).

The oracle is the same table reading the batches without a break: pickling the table
between batches and reading on with the loaded copy must give the identical flows frame,
for open TCP connections, pending IP fragments (a datagram split across the break) and
flows inside tunnels.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import CAPTURES
from tracker.decode import decode
from tracker.flows import FlowOptions, FlowRecords, FlowTable
from tracker.flows.table import prepare_batch
from tracker.report.flows import flows_dataframe
from tracker.sources.files import open_capture

TUNNELS = Path(__file__).resolve().parents[2].parent / "shared" / "tunnels"


def read(path: Path, breaks: set[int], options: FlowOptions) -> tuple[pd.DataFrame, int]:
    """Flows of ``path`` read in small batches, pickling the table before each batch in
    ``breaks``; also the size of the last pickle."""
    with open_capture(path, batch_bytes=1 << 12) as reader:
        batches = list(reader)
    table, size, parts = FlowTable(options), 0, []
    for i, fb in enumerate(batches):
        if i in breaks:
            blob = pickle.dumps(table)
            size = len(blob)
            table = pickle.loads(blob)
        parts.append(table.update(decode(fb), fb))
    parts.append(table.flush())
    return flows_dataframe(FlowRecords.concat(parts)), size


@pytest.mark.parametrize("name", ["office.pcap", "ipv4-fragments.pcap", "ipv6-fragments.pcap",
                                  "tcp-port-reuse.pcap", "snaplen-96.pcap"])
def test_a_pickled_table_goes_on_as_the_same_table(name: str) -> None:
    options = FlowOptions(verify_checksums=True)
    whole, _ = read(CAPTURES / name, set(), options)
    carried, size = read(CAPTURES / name, set(range(1, 10_000)), options)  # at every batch
    pd.testing.assert_frame_equal(whole, carried)
    assert size < 200_000  # the open state, not the table's preallocated arrays


def test_fragments_pending_across_the_break() -> None:
    """ipv4-fragments.pcap read one frame per batch, the table pickled before every frame:
    its 3 fragments still make one packet of 3000 IP bytes (captures/README.md)."""
    with open_capture(CAPTURES / "ipv4-fragments.pcap", batch_bytes=1) as reader:
        batches = list(reader)
    assert [len(b) for b in batches] == [1, 1, 1, 1]
    table, parts = FlowTable(FlowOptions()), []
    for fb in batches:
        table = pickle.loads(pickle.dumps(table))
        parts.append(table.update(decode(fb), fb))
    parts.append(table.flush())
    udp = flows_dataframe(FlowRecords.concat(parts)).query("proto == 'udp'").iloc[0]
    assert (udp["orig_pkts"], udp["orig_ip_bytes"], udp["orig_wire_bytes"]) == (1, 3000, 3082)


@pytest.mark.parametrize("name", ["tunnels-geneve", "tunnels-ayiya3", "tunnels-gre-sample"])
def test_tunnel_memory_is_carried(name: str) -> None:
    trace = TUNNELS / name / "trace.pcap"
    if not trace.exists():
        pytest.skip(f"the tunnel captures are absent: expected them at {TUNNELS}")
    whole, _ = read(trace, set(), FlowOptions())
    carried, _ = read(trace, set(range(1, 10_000)), FlowOptions())
    pd.testing.assert_frame_equal(whole, carried)


@pytest.mark.parametrize("name", ["office.pcap", "ipv4-fragments.pcap", "ipv6-fragments.pcap",
                                  "tcp-port-reuse.pcap", "snaplen-96.pcap"])
@pytest.mark.parametrize("verify", [True, False])
def test_batches_prepared_ahead_walk_as_given_ones(name: str, verify: bool) -> None:
    """prepare_batch does the state-free part of update elsewhere (a cluster read's
    prepare task): batch by batch, the same ended flows and the same flow of every frame;
    batches with fragments or tunnels are refused and go through update."""
    options = FlowOptions(verify_checksums=verify)
    with open_capture(CAPTURES / name, batch_bytes=1 << 12) as reader:
        batches = [(fb, decode(fb)) for fb in reader]
    given, ahead = FlowTable(options), FlowTable(options)
    expected, got, refused = [], [], 0
    for fb, pb in batches:
        expected.append(given.update(pb, fb))
        ready = prepare_batch(pb, options)
        refused += ready is None
        got.append(ahead.update(pb, fb) if ready is None else ahead.update_prepared(ready))
        assert len(got[-1]) == len(expected[-1])  # ended in the same batch
        assert (ahead.flow_ids == given.flow_ids).all()
    expected.append(given.flush())
    got.append(ahead.flush())
    pd.testing.assert_frame_equal(flows_dataframe(FlowRecords.concat(got)),
                                  flows_dataframe(FlowRecords.concat(expected)))
    assert refused > 0 if "fragments" in name else refused == 0


def test_a_packed_batch_unpacks_to_the_same_walk_input() -> None:
    """KernelBatch.packed (a cluster's prepared file waiting in a worker) narrows every
    column; unpacked, the walk gets the same int64 arrays and the same flows."""
    import numpy as np

    options = FlowOptions()
    with open_capture(CAPTURES / "office.pcap") as reader:
        batches = [prepare_batch(decode(frames), options) for frames in reader]
    assert all(b is not None for b in batches)
    whole, packed = FlowTable(options), FlowTable(options)
    ended, from_packed = [], []
    for b in batches:
        assert b is not None
        p = b.packed()
        u = p.unpacked()
        for name in ("pk", "pi", "rows", "positions"):
            got, want = getattr(u, name), getattr(b, name)
            assert got.dtype == want.dtype and np.array_equal(got, want), name
        assert (u.n, u.newest) == (b.n, b.newest) and u.pi.flags.c_contiguous
        assert sum(c.nbytes for c in p.pi) < b.pi.nbytes / 2  # what packing is for
        ended.append(whole.update_prepared(b))
        from_packed.append(packed.update_prepared(u))
    pd.testing.assert_frame_equal(flows_dataframe(FlowRecords.concat([*ended, whole.flush()])),
                                  flows_dataframe(FlowRecords.concat([*from_packed,
                                                                      packed.flush()])))
