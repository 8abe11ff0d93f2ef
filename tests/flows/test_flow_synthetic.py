"""A synthetic capture (../shared/tools/gen_pcap.py) against its exact truth table.

gen_pcap writes each flow's true per-direction packets and wire bytes and what
kind of conversation it made; every 5-tuple is one conversation. So the flow
table must find exactly those flows and counts, and each kind must end in
the conn_state its packets call for.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tracker.flows import FlowOptions, FlowRecords, FlowTable
from tracker.report.flows import flows_dataframe

GEN = Path(__file__).resolve().parents[2].parent / "shared" / "tools" / "gen_pcap.py"
STATES_BY_KIND = {  # gen_pcap.py tcp_flow kinds and its UDP kinds (10 DNS, 11 streams)
    0: {"SF"}, 1: {"RSTO", "RSTR"}, 2: {"S1"}, 3: {"REJ"}, 4: {"S0"}, 10: {"SF", "S0"},
    11: {"SF", "S0"},
}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    if not GEN.exists():
        pytest.skip(f"gen_pcap.py is absent: expected it at {GEN}")
    d = tmp_path_factory.mktemp("gen")
    subprocess.run([sys.executable, str(GEN), "--packets", "20000", "--seed", "7", "-o",
                    str(d / "g.pcap"), "--truth", str(d / "t.csv"), "--quiet"], check=True)
    return d / "g.pcap", pd.read_csv(d / "t.csv")


def _flows(path: Path) -> pd.DataFrame:
    from tracker.decode import decode
    from tracker.sources.files import open_capture

    table = FlowTable(FlowOptions())
    with open_capture(path) as reader:
        parts = [table.update(decode(fb)) for fb in reader]
    return flows_dataframe(FlowRecords.concat([*parts, table.flush()]))


def test_flows_and_counts_match_the_truth(synthetic: tuple[Path, pd.DataFrame]) -> None:
    path, truth = synthetic
    ours = _flows(path)
    assert len(ours) == len(truth)
    o = pd.DataFrame({
        "proto": np.where(ours["proto"] == "tcp", 6, 17),
        "orig": ours["orig_addr"].astype(str) + ":" + ours["orig_port"].astype(str),
        "resp": ours["resp_addr"].astype(str) + ":" + ours["resp_port"].astype(str),
        "orig_pkts": ours["orig_pkts"], "resp_pkts": ours["resp_pkts"],
        "orig_wire": ours["orig_wire_bytes"], "resp_wire": ours["resp_wire_bytes"],
        "conn_state": ours["conn_state"].astype(str),
    })
    t = truth.assign(a=truth["a_addr"] + ":" + truth["a_port"].astype(str),
                     b=truth["b_addr"] + ":" + truth["b_port"].astype(str))
    fwd = t.merge(o, left_on=["proto", "a", "b"], right_on=["proto", "orig", "resp"])
    rev = t.merge(o, left_on=["proto", "b", "a"], right_on=["proto", "orig", "resp"])
    assert len(fwd) + len(rev) == len(truth)  # every true flow found, in one orientation
    for df, a, b in ((fwd, "orig", "resp"), (rev, "resp", "orig")):
        assert (df["a2b_pkts"] == df[f"{a}_pkts"]).all() and (df["b2a_pkts"] == df[f"{b}_pkts"]).all()
        assert (df["a2b_bytes"] == df[f"{a}_wire"]).all() and (df["b2a_bytes"] == df[f"{b}_wire"]).all()
    both = pd.concat([fwd, rev])
    allowed = both["kind"].map(STATES_BY_KIND)
    bad = both[[s not in a for s, a in zip(both["conn_state"], allowed, strict=True)]]
    assert bad.empty, bad[["kind", "conn_state", "a", "b"]].head()
