"""tracker.plot: the numbers each figure draws equal the DataFrame they came from."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")  # no screen: draw to memory

import matplotlib.pyplot as plt

import tracker
from tests.conftest import CAPTURES
from tracker import plot
from tracker.report.summarize import example_flows


@pytest.fixture(autouse=True)
def _close() -> None:
    yield
    plt.close("all")


def _flows() -> pd.DataFrame:
    return pd.concat([tracker.read_flows(p) for p in sorted(CAPTURES.glob("*.pcap"))
                      if p.name != "truncated-last-record.pcap"],
                     ignore_index=True)


def test_top_talkers_bars_are_the_summarys_bytes() -> None:
    flows = example_flows()
    ax = plot.top_talkers(flows, n=3)
    widths = [bar.get_width() for bar in ax.patches]
    # By hand from example_flows: 192.168.1.5 sends 1200+60+60 and receives 780+60+100.
    assert widths[0] == 2260 and len(widths) == 3
    assert ax.get_yticklabels()[0].get_text() == "192.168.1.5"
    assert ax.get_xlabel() == "IP bytes sent and received"


def test_port_class_bars_sum_each_class() -> None:
    flows = _flows()
    ax = plot.bytes_by_port_class(flows)
    heights = [bar.get_height() for bar in ax.patches]
    total = flows["orig_ip_bytes"] + flows["resp_ip_bytes"]
    for cls, height in zip(["well_known", "registered", "dynamic"], heights, strict=True):
        assert height == int(total[flows["port_class"] == cls].sum())
    assert ax.get_ylabel() == "IP bytes"
    assert [t.get_text().split("\n")[1] for t in ax.get_xticklabels()] == [
        "0-1023", "1024-49151", "49152-65535"]  # IANA's ranges (RFC 6335 section 6)
    # Byte ticks in units a person reads: "2 kB", never a bare 2000 or a 1e6 offset.
    ax.figure.canvas.draw()
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert ticks and all(t.endswith("B") for t in ticks)


def test_service_bars_are_bytes_per_service() -> None:
    flows = example_flows()
    ax = plot.bytes_by_service(flows)
    got = {t.get_text(): bar.get_width() for t, bar in zip(ax.get_yticklabels(), ax.patches,
                                                           strict=True)}
    assert got == {"tcp/http": 1980 + 120, "udp/domain": 160 + 70}


def test_host_matrix_cells_are_bytes_between_hosts() -> None:
    flows = example_flows()
    ax = plot.host_matrix(flows)
    grid = ax.images[0].get_array().filled(0)
    rows = [t.get_text() for t in ax.get_yticklabels()]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    cell = grid[rows.index("192.168.1.5"), cols.index("192.168.1.7")]
    assert cell == 1980 + 120  # the two TCP flows, both ways
    assert grid.sum() == int((flows["orig_ip_bytes"] + flows["resp_ip_bytes"]).sum())
    # Each non-empty cell says its bytes: 2100 B written as "2 kB" (one per cell).
    assert sorted(t.get_text() for t in ax.texts) == sorted(
        [f"{v / 1000:.0f} kB" if v >= 1000 else f"{v:.0f} B" for v in grid[grid > 0]])


def test_timeline_has_a_bar_per_flow_as_long_as_it_lasted() -> None:
    flows = _flows()
    ax = plot.flow_timeline(flows, limit=10)
    bars = [p for p in ax.patches if p.get_height() > 0]
    assert len(bars) == 10
    shown = flows.sort_values(["first_ts", "flow_id"]).head(10)
    days = (shown["last_ts"] - shown["first_ts"]).dt.total_seconds().to_numpy() / 86400
    starts = np.array([b.get_x() for b in bars])
    span = np.max(starts + days) - np.min(starts)
    assert np.allclose([b.get_width() for b in bars], np.maximum(days, span / 300))
    assert ax.get_xlabel() == "time (UTC)"


def test_bytes_over_time_sums_every_packet() -> None:
    packets = tracker.read_packets(CAPTURES / "tcp-port-reuse.pcap")
    ax = plot.bytes_over_time(packets, freq="1s")
    steps = ax.patches[0].get_data()
    assert steps.values.sum() == int(packets["ip_len"].sum())
    assert steps.values.sum() == 656  # captures/README.md: 656 IP bytes in 12 packets
    assert len(steps.edges) == len(steps.values) + 1  # every bin has its width


def test_state_sequence_marks_every_packet_with_its_flags() -> None:
    packets = tracker.read_packets(CAPTURES / "tcp-handshake-fin.pcap")
    ax = plot.state_sequence(packets, [0])
    texts = [a.get_text() for a in ax.texts]
    assert len(texts) == 11  # the capture's 11 packets
    assert texts[:3] == ["S", "S.", "."]  # tcpdump's words for the handshake
