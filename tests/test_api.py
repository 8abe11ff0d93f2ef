"""The public Python API: read_flows / read_packets shapes, options and errors."""

from __future__ import annotations

import struct
from pathlib import Path

import pandas as pd
import pytest

import tracker
from tests.conftest import CAPTURES
from tracker.errors import NotACaptureError, OptionError
from tracker.report.columns import FLOW_COLUMNS, PACKET_COLUMNS


@pytest.fixture
def empty_pcap(tmp_path: Path) -> Path:
    path = tmp_path / "empty.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    return path


def test_no_packets_gives_empty_frames_with_every_column(empty_pcap: Path) -> None:
    flows = tracker.read_flows(empty_pcap)
    packets = tracker.read_packets(empty_pcap)
    assert flows.empty and list(flows.columns) == [c.name for c in FLOW_COLUMNS]
    assert packets.empty and list(packets.columns) == [c.name for c in PACKET_COLUMNS]
    assert [str(t) for t in flows.dtypes] == [c.dtype for c in FLOW_COLUMNS]
    assert [str(t) for t in packets.dtypes] == [c.dtype for c in PACKET_COLUMNS]


def test_dtypes_follow_the_column_tables() -> None:
    flows = tracker.read_flows(CAPTURES / "tcp-handshake-fin.pcap")
    packets = tracker.read_packets(CAPTURES / "tcp-handshake-fin.pcap")
    assert [str(t) for t in flows.dtypes] == [c.dtype for c in FLOW_COLUMNS]
    assert [str(t) for t in packets.dtypes] == [c.dtype for c in PACKET_COLUMNS]
    assert flows["first_ts"].iloc[0] == pd.Timestamp("2023-11-14T22:13:20Z")


def test_every_packet_points_at_its_flow() -> None:
    flows = tracker.read_flows(CAPTURES / "tcp-port-reuse.pcap")
    packets = tracker.read_packets(CAPTURES / "tcp-port-reuse.pcap")
    per_flow = packets.groupby("flow_id").size()
    totals = flows.set_index("flow_id")[["orig_pkts", "resp_pkts"]].sum(axis=1)
    assert per_flow.to_dict() == totals.to_dict()  # 8 packets in flow 0, 4 in flow 1


def test_fragments_share_their_datagram_flow() -> None:
    packets = tracker.read_packets(CAPTURES / "ipv4-fragments.pcap")
    assert packets["flow_id"].tolist() == [0, 1, 1, 1]


def test_options_as_keywords_or_object() -> None:
    a = tracker.read_flows(CAPTURES / "vlan.pcap", vlan_in_key=True)
    b = tracker.read_flows(CAPTURES / "vlan.pcap", options=tracker.FlowOptions(vlan_in_key=True))
    pd.testing.assert_frame_equal(a, b)


def test_unknown_option_names_itself() -> None:
    with pytest.raises(OptionError, match="tcp_inactivty"):
        tracker.read_flows(CAPTURES / "vlan.pcap", tcp_inactivty=5)


def test_bad_option_value_names_the_value() -> None:
    with pytest.raises(OptionError, match="udp_inactivity.*-1"):
        tracker.read_flows(CAPTURES / "vlan.pcap", udp_inactivity=-1)


def test_file_object_source() -> None:
    with open(CAPTURES / "nanosecond.pcap", "rb") as fh:
        df = tracker.read_packets(fh)
    # Written by hand in captures/README.md: 1700000000.000000001 and .123456789.
    assert df["ts"].astype("int64").tolist() == [1_700_000_000_000_000_001,
                                                  1_700_000_000_123_456_789]


def test_not_a_capture_raises_the_projects_error(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(b"hello world, not a capture")
    with pytest.raises(NotACaptureError, match="x.pcap"):
        tracker.read_flows(path)


def test_summary_counts_statuses() -> None:
    df = tracker.read_packets(CAPTURES / "ipv4-fragments.pcap")
    summary = df.attrs["summary"]
    assert summary["frames"] == 4 and summary["status"]["FRAGMENT"] == 3
    assert summary["status"]["OK"] == 1 and summary["flows"] == 2


def test_fragments_get_their_flow_across_batches() -> None:
    from tracker.sources.files import open_capture

    # One frame per batch (any FrameSource is a source): the datagram completes two
    # batches after its first fragment.
    packets = tracker.read_packets(open_capture(CAPTURES / "ipv4-fragments.pcap", batch_bytes=1))
    assert packets["flow_id"].tolist() == [0, 1, 1, 1]
