"""captures/office.pcap is what office.py builds, byte for byte, and its flows are what was
put in: the expected values follow from office.py's plan and SEMANTICS.md's rules, written
here by hand, not from the tracker's output."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

import tracker
from tests.conftest import CAPTURES

sys.path.insert(0, str(CAPTURES))
import office  # captures/ is not a package: imported by path

sys.path.pop(0)


@pytest.fixture(scope="module")
def built() -> tuple[bytes, office.Plan]:
    return office.build()


@pytest.fixture(scope="module")
def flows() -> pd.DataFrame:
    return tracker.read_flows(CAPTURES / "office.pcap")


def test_committed_capture_is_the_build(built: tuple[bytes, office.Plan]) -> None:
    data, plan = built
    assert (CAPTURES / "office.pcap").read_bytes() == data
    assert 2_000_000 < len(data) < 8_000_000  # "a few MB"
    assert plan.visits > 20 and plan.downloads == 3 and plan.scanned == 1024


def test_every_conversation_is_one_flow_but_the_idle_one(
        built: tuple[bytes, office.Plan], flows: pd.DataFrame) -> None:
    plan = built[1]
    # One flow per conversation put in; the idle database connection is split in two.
    expected = plan.visits + plan.downloads + plan.dns + plan.scanned + plan.refused + 1 + 2 + 1
    assert len(flows) == expected
    assert flows.attrs["summary"]["status"]["OK"] == flows.attrs["summary"]["frames"]


def test_the_scan(flows: pd.DataFrame) -> None:
    scan = flows[flows["orig_addr"].astype(str) == office.SCANNER]
    assert len(scan) == 1024 and set(scan["resp_port"]) == set(office.SCAN_PORTS)
    closed = scan[~scan["resp_port"].isin(office.OPEN_PORTS)]
    # SYN answered by RST-ACK: REJ, history Sr (SEMANTICS.md, as tcp-rejected.pcap).
    assert (closed["conn_state"] == "REJ").all() and (closed["history"] == "Sr").all()
    opened = scan[scan["resp_port"].isin(office.OPEN_PORTS)]
    # SYN, SYN-ACK, the scanner's RST: the originator aborted a connection the responder
    # had accepted: RSTO, history ShR.
    assert sorted(opened["resp_port"]) == [80, 443]
    assert set(opened["conn_state"]) == {"RSTO"} and set(opened["history"]) == {"ShR"}


def test_refused_service_and_web(built: tuple[bytes, office.Plan], flows: pd.DataFrame) -> None:
    plan = built[1]
    clients = flows[flows["orig_addr"].astype(str) != office.SCANNER]
    refused = clients[clients["resp_port"] == office.REFUSED_PORT]
    assert len(refused) == office.REFUSED_TRIES and set(refused["conn_state"]) == {"REJ"}
    assert set(refused["orig_addr"].astype(str)) == {office.CLIENTS[1]}
    web = clients[(clients["proto"] == "tcp") & clients["resp_port"].isin([80, 443])]
    # Every page and download: handshake, data, FIN both ways, last ACK.
    assert len(web) == plan.visits + plan.downloads
    assert set(web["conn_state"]) == {"SF"} and set(web["orig_state"]) == {"TIME_WAIT"}
    dns = clients[(clients["proto"] == "udp") & (clients["resp_port"] == 53)]
    assert len(dns) == plan.dns and set(dns["conn_state"]) == {"SF"}
    assert (dns["resp_addr"].astype(str).str.contains(":")).sum() > 0  # AAAA over IPv6 too


def test_idle_database_connection_is_two_flows(flows: pd.DataFrame) -> None:
    db = flows[flows["resp_port"] == 5432].sort_values("first_ts")
    assert len(db) == 2
    first, second = db.iloc[0], db.iloc[1]
    # Silent for 360 s > tcp_inactivity 300 s: the first ends idle, handshake seen (S1);
    # the second starts in the middle (no SYN): OTH, history from D, never closed: eof.
    assert first["end_reason"] == "idle" and first["conn_state"] == "S1"
    assert second["history"].startswith("D") and second["conn_state"] == "OTH"
    assert second["end_reason"] == "eof"
    gap = (second["first_ts"] - first["last_ts"]).total_seconds()
    assert gap > 300


def test_video_call_and_ssh(flows: pd.DataFrame) -> None:
    call = flows[flows["resp_port"] == office.CALL_PORT]
    assert len(call) == 1
    assert call.iloc[0]["orig_pkts"] == 300 and call.iloc[0]["resp_pkts"] == 300
    assert call.iloc[0]["port_class"] == "dynamic"
    ssh = flows[(flows["resp_port"] == 22) & (flows["orig_addr"].astype(str) != office.SCANNER)]
    assert len(ssh) == 1 and ssh.iloc[0]["conn_state"] == "SF"
    # The 512 KB copy goes up: the client sent more than half a megabyte.
    assert ssh.iloc[0]["orig_bytes"] > 524_288 > ssh.iloc[0]["resp_bytes"]
