"""Parts of a capture walked alone and stitched (tracker/flows/stitch.py), in one process.

The oracle is the sequential read of the same files (``tracker.read_flows(paths)``): the
stitched rows must be identical, in the same order, every column, flow ids included.
The cluster tests (tests/test_cluster.py) run the same parts on Dask workers.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import tracker
from benchmarks.cluster import split
from tests.conftest import CAPTURES, corpus_traces, need_corpus
from tracker.cluster import prepare_part, walk_part
from tracker.flows import FlowOptions, FlowRecords, FlowTable
from tracker.flows.stitch import can_stitch
from tracker.report.flows import flows_dataframe
from tracker.sources.files import open_capture

GEN_PCAP = Path(__file__).resolve().parents[2].parent / "shared" / "tools" / "gen_pcap.py"


def stitched(files: list[Path], options: FlowOptions) -> tuple[pd.DataFrame, int]:
    """The files' flows walked alone and stitched in this process (cluster.py's two
    tasks), and how many parts could be stitched."""
    state, parts, stitches = None, [], 0
    for i, path in enumerate(files):
        prepared = prepare_part(str(path), options, False, None, True)
        if state is not None:  # pickled: no table is kept for the next walk
            stitches += can_stitch(FlowTable.from_state(pickle.loads(state)), prepared.alone)
        part = walk_part(prepared, state, options, i == len(files) - 1)
        state = part.state
        parts.append(part.flows)
    return flows_dataframe(FlowRecords.concat(parts)), stitches


def check(files: list[Path], options: FlowOptions | None = None) -> int:
    options = options or FlowOptions()
    sequential = tracker.read_flows(files, options=options)
    got, stitches = stitched(files, options)
    assert len(got) == len(sequential) > 0
    pd.testing.assert_frame_equal(got, sequential)
    return stitches


def test_office_capture_in_8_parts(tmp_path: Path) -> None:
    files = split(CAPTURES / "office.pcap", 8, tmp_path)
    assert check(files) == 7  # a plain capture: every part after the first is stitched
    assert check(files, FlowOptions(verify_checksums=True)) == 7


def test_generated_capture_in_12_parts(tmp_path: Path) -> None:
    """Thousands of flows open at every boundary, and timers due at the same time (the
    generator's microsecond clock): the merge puts them in the sequential order."""
    if not GEN_PCAP.exists():
        pytest.skip(f"the shared generator is absent: expected it at {GEN_PCAP}")
    import subprocess
    import sys

    whole = tmp_path / "gen.pcap"
    subprocess.run([sys.executable, str(GEN_PCAP), "-o", str(whole), "--packets", "120000",
                    "--seed", "5", "--quiet"], check=True)
    assert check(split(whole, 12, tmp_path)) == 11


def test_an_open_flow_cap_walks_every_part_from_the_carried_state(tmp_path: Path) -> None:
    """Evictions depend on every open flow: with a cap nothing is stitched, and the
    result is the sequential one all the same."""
    files = split(CAPTURES / "office.pcap", 4, tmp_path)
    assert check(files, FlowOptions(max_open_flows=50)) == 0


def test_pending_fragments_are_walked_from_the_carried_state(tmp_path: Path) -> None:
    """A datagram cut by the boundary (its first fragment in one part, the rest in the
    next) cannot be stitched: the next part is walked from the carried state and the
    datagram still makes one packet of 3000 IP bytes (captures/README.md)."""
    files = split(CAPTURES / "ipv4-fragments.pcap", 2, tmp_path)
    with open_capture(files[0]) as reader:
        assert sum(len(b) for b in reader) == 2  # the cut falls inside the datagram
    assert check(files) == 0
    flows = tracker.read_flows(files)
    assert flows["orig_ip_bytes"].sum() + flows["resp_ip_bytes"].sum() >= 3000


def test_a_retried_walk_finds_the_pending_fragments_it_started_from(tmp_path: Path) -> None:
    """A Part's state is the table's as the walk left it: the walk after it, on the
    kept table or a table loaded from the state, reassembles the cut datagram, and a
    retried walk from the same Part finds the first fragment still pending (the
    reassembler is the table's own object: the Part holds a copy)."""
    files = split(CAPTURES / "ipv4-fragments.pcap", 2, tmp_path)
    options = FlowOptions()
    prepared = [prepare_part(str(f), options, False) for f in files]
    sequential = tracker.read_flows(files)
    first = walk_part(prepared[0], None, options, False, keep="w0")
    assert first.state is not None and first.state["reasm"].pending().fragments
    for _ in range(3):  # the kept table, then loaded twice from the state
        second = walk_part(prepared[1], first, options, True)
        got = flows_dataframe(FlowRecords.concat([first.flows, second.flows]))
        pd.testing.assert_frame_equal(got, sequential)
    assert first.state["reasm"].pending().fragments


@pytest.mark.corpus
def test_split_corpus_traces(tmp_path: Path) -> None:
    """Every corpus trace with enough frames, cut in 3 parts: tunnels, fragments and
    link layers of real captures, stitched or walked as the conditions say."""
    need_corpus()
    done = 0
    for trace in corpus_traces():
        if trace.suffix != ".pcap" or trace.stat().st_size < 4096:
            continue
        folder = tmp_path / f"t{done}"
        folder.mkdir()
        try:
            files = split(trace, 3, folder)
        except (ValueError, IndexError):
            continue  # not a classic little-endian pcap the splitter handles
        if min(f.stat().st_size for f in files) <= 24:
            continue
        check(files)
        done += 1
    assert done >= 10


def test_a_kept_table_walks_on_as_the_loaded_state(tmp_path: Path) -> None:
    """A walk that goes on with the table its worker kept (cluster.py's blocks) gives
    what loading the previous file's state gives; a retried walk, whose kept table the
    first try took, loads the state and gives the same again; and the state each leaves
    goes on to the sequential read's flows."""
    from tracker import cluster

    files = split(CAPTURES / "office.pcap", 4, tmp_path)
    options = FlowOptions()
    sequential = tracker.read_flows(files)
    prepared = [prepare_part(str(f), options, False) for f in files]

    def rest(first: list[FlowRecords], state: dict[str, Any] | bytes | None) -> pd.DataFrame:
        parts = list(first)
        for i in (2, 3):
            part = walk_part(prepared[i], state, options, i == 3)
            parts.append(part.flows)
            state = part.state
        return flows_dataframe(FlowRecords.concat(parts))

    first = walk_part(prepared[0], None, options, False, keep="walk-0")
    assert first.token == "walk-0" and set(cluster._KEPT) == {"walk-0"}
    kept = walk_part(prepared[1], first, options, False)
    assert not cluster._KEPT  # taken, and this walk kept none
    loaded = walk_part(prepared[1], first.state, options, False)  # from the state
    again = walk_part(prepared[1], first, options, False)  # retried: nothing kept now
    for part in (kept, loaded, again):
        pd.testing.assert_frame_equal(rest([first.flows, part.flows], part.state), sequential)

    # No state left in the Parts: only the kept tables can go on from file to file.
    rows = [walk_part(prepared[0], None, options, False, keep="k0").flows]
    for i in (1, 2, 3):
        previous = cluster.Part(rows[-1], None, first.summary, None, f"k{i - 1}")
        rows.append(walk_part(prepared[i], previous, options, i == 3, keep=f"k{i}").flows)
    assert not cluster._KEPT  # the last walk flushes and keeps nothing
    pd.testing.assert_frame_equal(flows_dataframe(FlowRecords.concat(rows)), sequential)


def test_ended_flows_as_rows_make_the_same_records(tmp_path: Path) -> None:
    """A cluster's walk leaves its ended flows as table rows (Part.rows) and the task
    after it makes their records: the same flows, in the same order, as records made in
    the walk; the last file's flushed flows come after them."""
    from tracker.cluster import without_state

    files = split(CAPTURES / "office.pcap", 3, tmp_path)
    options = FlowOptions()
    prepared = [prepare_part(str(f), options, False) for f in files]
    state: dict[str, Any] | bytes | None = None
    got = []
    for i, p in enumerate(prepared):
        part = walk_part(p, state, options, i == 2, rows=True)
        assert part.rows is not None and len(part.rows) > 0
        assert part.summary.flows == len(part.rows) + len(part.flows)
        got.append(without_state(part).flows)
        state = part.state
    assert len(part.flows) > 0  # the last file's flushed flows, as records
    pd.testing.assert_frame_equal(flows_dataframe(FlowRecords.concat(got)),
                                  tracker.read_flows(files))
