"""Summaries of hand-built flows tables (tracker/report/summarize.py).

Every expected number is summed by hand from the rows written in each test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from tracker.errors import OptionError
from tracker.report.summarize import (
    by_host,
    by_service,
    by_socket_pair,
    by_state,
    example_flows,
    top_talkers,
)

PROTOS = ["tcp", "udp", "icmp", "icmp6"]


def flows(*rows: dict[str, Any]) -> pd.DataFrame:
    """A flows table with the documented columns and dtypes; each row gives
    (proto, orig, resp) as "addr:port" text plus the counters that matter."""
    def col(name: str, default: Any) -> list[Any]:
        return [r.get(name, default) for r in rows]

    orig = [r["orig"].rsplit(":", 1) for r in rows]
    resp = [r["resp"].rsplit(":", 1) for r in rows]
    first = pd.to_datetime(col("t", 0), unit="s", utc=True).as_unit("ns")
    df = pd.DataFrame({
        "flow_id": np.arange(len(rows), dtype=np.int64),
        "first_ts": first,
        "last_ts": first + pd.to_timedelta(col("dur", 1), unit="s"),
        "proto": pd.Categorical(col("proto", "tcp"), categories=PROTOS),
        "orig_addr": pd.Categorical([a for a, _ in orig]),
        "orig_port": np.array([int(p) for _, p in orig], np.int32),
        "resp_addr": pd.Categorical([a for a, _ in resp]),
        "resp_port": np.array([int(p) for _, p in resp], np.int32),
        "vlan": pd.array([pd.NA] * len(rows), dtype="Int32"),
        "service": pd.Categorical(col("service", "")),
        "conn_state": pd.Categorical(col("conn_state", "SF")),
        "state": pd.Categorical(col("state", None)),
        "orig_state": pd.Categorical(col("orig_state", None)),
        "resp_state": pd.Categorical(col("resp_state", None)),
    })
    for side in ("orig", "resp"):
        df[f"{side}_pkts"] = np.array(col(f"{side}_pkts", 1), np.int64)
        df[f"{side}_ip_bytes"] = np.array(col(f"{side}_ip_bytes", 100), np.int64)
        df[f"{side}_wire_bytes"] = df[f"{side}_ip_bytes"] + 14
        df[f"{side}_bytes"] = pd.array(col(f"{side}_bytes", 0), dtype="Int64")
        df[f"{side}_payload_bytes"] = np.array(col(f"{side}_payload_bytes", 10), np.int64)
    df["duration"] = df["last_ts"] - df["first_ts"]
    return df


def test_socket_pair_merges_directions_and_reuse() -> None:
    df = flows(
        {"orig": "10.0.0.9:1099", "resp": "10.0.0.10:80", "t": 5, "dur": 2,
         "conn_state": "SF", "state": "TIME_WAIT", "orig_pkts": 5, "resp_pkts": 4,
         "orig_ip_bytes": 400, "resp_ip_bytes": 300},
        # The same pair seen from the other side (a flipped, midstream flow), then a reuse.
        {"orig": "10.0.0.10:80", "resp": "10.0.0.9:1099", "t": 1, "conn_state": "OTH",
         "orig_pkts": 2, "resp_pkts": 0, "orig_ip_bytes": 80, "resp_ip_bytes": 0},
        {"orig": "10.0.0.9:1099", "resp": "10.0.0.10:80", "t": 9, "conn_state": "REJ",
         "state": "CLOSE", "orig_pkts": 1, "resp_pkts": 1, "orig_ip_bytes": 60,
         "resp_ip_bytes": 40},
        {"proto": "udp", "orig": "10.0.0.9:1099", "resp": "10.0.0.10:80", "t": 3})
    out = by_socket_pair(df)
    assert len(out) == 2  # tcp and udp on the same sockets are different pairs
    tcp = out.iloc[0]
    # Numeric order: 10.0.0.9 < 10.0.0.10 (as text it would be the other way).
    assert (tcp["proto"], tcp["addr_a"], tcp["port_a"], tcp["addr_b"], tcp["port_b"]) == (
        "tcp", "10.0.0.9", 1099, "10.0.0.10", 80)
    assert (tcp["flows"], tcp["packets"], tcp["bytes"]) == (3, 13, 880)
    assert tcp["payload_bytes"] == 60
    assert tcp["first_ts"] == pd.Timestamp(1, unit="s", tz="UTC")
    assert tcp["last_ts"] == pd.Timestamp(10, unit="s", tz="UTC")  # the REJ flow: 9 + 1
    assert tcp["conn_states"] == "OTH,REJ,SF"
    assert tcp["states"] == "CLOSE,TIME_WAIT"  # the missing state is not listed
    assert out.iloc[1]["proto"] == "udp" and out.iloc[1]["flows"] == 1


def test_socket_pair_same_address_orders_by_port_and_ipv6_after_ipv4() -> None:
    df = flows({"orig": "::1:5000", "resp": "::1:22"},
               {"orig": "192.168.1.5:40000", "resp": "192.168.1.5:53", "proto": "udp"},
               {"orig": "2001:db8::1:1", "resp": "10.0.0.1:2"})
    out = by_socket_pair(df)
    got = list(zip(out["addr_a"], out["port_a"], out["addr_b"], out["port_b"]))
    assert got == [("10.0.0.1", 2, "2001:db8::1", 1), ("::1", 22, "::1", 5000),
                   ("192.168.1.5", 53, "192.168.1.5", 40000)]


def test_by_host_counts_both_roles_and_self_talk() -> None:
    df = flows(
        {"orig": "10.0.0.1:1", "resp": "10.0.0.2:80", "orig_pkts": 3, "resp_pkts": 2,
         "orig_ip_bytes": 300, "resp_ip_bytes": 200},
        {"orig": "10.0.0.3:1", "resp": "10.0.0.1:22", "orig_pkts": 1, "resp_pkts": 4,
         "orig_ip_bytes": 50, "resp_ip_bytes": 700},
        {"orig": "10.0.0.1:9", "resp": "10.0.0.1:10", "orig_pkts": 1, "resp_pkts": 1,
         "orig_ip_bytes": 20, "resp_ip_bytes": 30})
    out = by_host(df).set_index("addr")
    h1 = out.loc["10.0.0.1"]
    # Originated flows 1 and 3, received flows 2 and 3 (itself).
    assert (h1["flows"], h1["flows_originated"], h1["flows_received"]) == (4, 2, 2)
    assert (h1["packets_sent"], h1["packets_received"]) == (3 + 4 + 1 + 1, 2 + 1 + 1 + 1)
    assert (h1["bytes_sent"], h1["bytes_received"]) == (300 + 700 + 20 + 30, 200 + 50 + 30 + 20)
    assert h1["peers"] == 3  # 10.0.0.2, 10.0.0.3 and itself
    assert out.loc["10.0.0.2", "bytes_sent"] == 200 and out.loc["10.0.0.2", "peers"] == 1
    assert list(out.index) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_by_service_groups_per_proto_and_name() -> None:
    df = flows(
        {"orig": "10.0.0.1:1", "resp": "10.0.0.9:443", "service": "https"},
        {"orig": "10.0.0.2:1", "resp": "10.0.0.9:443", "service": "https"},
        {"orig": "10.0.0.2:2", "resp": "10.0.0.8:8443", "service": ""},
        {"orig": "10.0.0.2:3", "resp": "10.0.0.7:9999", "service": ""},
        {"proto": "udp", "orig": "10.0.0.1:5", "resp": "10.0.0.9:443", "service": "https"})
    out = by_service(df)
    got = {(p, s): (f, c, sv, pt) for p, s, f, c, sv, pt in zip(
        out["proto"], out["service"], out["flows"], out["clients"], out["servers"], out["ports"])}
    assert got == {("tcp", ""): (2, 1, 2, 2), ("tcp", "https"): (2, 2, 1, 1),
                   ("udp", "https"): (1, 1, 1, 1)}
    assert out["bytes"].sum() == 5 * 200


def test_by_state_per_column_with_shares_and_meanings() -> None:
    df = flows({"orig": "1.1.1.1:1", "resp": "2.2.2.2:2", "conn_state": "S0",
                "orig_state": "SYN_SENT", "resp_state": None},
               {"orig": "1.1.1.1:2", "resp": "2.2.2.2:2", "conn_state": "S0",
                "orig_state": "SYN_SENT"},
               {"orig": "1.1.1.1:3", "resp": "2.2.2.2:2", "conn_state": "SF",
                "orig_state": "TIME_WAIT", "resp_state": "CLOSE"},
               {"proto": "udp", "orig": "1.1.1.1:4", "resp": "2.2.2.2:53", "conn_state": "S0"})
    out = by_state(df)
    assert list(zip(out["proto"], out["conn_state"], out["flows"])) == [
        ("tcp", "S0", 2), ("tcp", "SF", 1), ("udp", "S0", 1)]
    assert out["share"].tolist() == [0.5, 0.25, 0.25]
    assert out["meaning"].iloc[0] == "connection attempt seen, no reply"
    orig = by_state(df, "orig_state")
    assert list(zip(orig["proto"], orig["orig_state"], orig["flows"])) == [
        ("tcp", "SYN_SENT", 2), ("tcp", "TIME_WAIT", 1), ("udp", "", 1)]
    assert orig["meaning"].iloc[0] == "actively trying to open a connection"
    with pytest.raises(OptionError, match="history"):
        by_state(df, "history")


def test_top_talkers_by_each_measure() -> None:
    df = flows({"orig": "10.0.0.1:1", "resp": "10.0.0.2:2", "orig_pkts": 10, "resp_pkts": 1,
                "orig_ip_bytes": 100, "resp_ip_bytes": 50},
               {"orig": "10.0.0.3:1", "resp": "10.0.0.4:2", "orig_pkts": 1, "resp_pkts": 1,
                "orig_ip_bytes": 5000, "resp_ip_bytes": 5000},
               {"orig": "10.0.0.3:2", "resp": "10.0.0.5:2", "orig_pkts": 1, "resp_pkts": 0,
                "orig_ip_bytes": 40, "resp_ip_bytes": 0})
    assert top_talkers(df, n=2)["addr"].tolist() == ["10.0.0.3", "10.0.0.4"]
    assert top_talkers(df, n=1)["bytes"].tolist() == [10040]
    # 10.0.0.1 and 10.0.0.2 tie on packets (11): address order decides.
    assert top_talkers(df, n=2, by="packets")["addr"].tolist() == ["10.0.0.1", "10.0.0.2"]
    assert top_talkers(df, n=1, by="peers")["addr"].tolist() == ["10.0.0.3"]
    assert len(top_talkers(df, n=0)) == 0 and len(top_talkers(df, n=99)) == 5
    with pytest.raises(OptionError, match="by must be"):
        top_talkers(df, by="wire")
    with pytest.raises(OptionError, match="n must be"):
        top_talkers(df, n=-1)


@pytest.mark.parametrize("summary", [by_socket_pair, by_host, by_service, by_state, top_talkers])
def test_empty_input_gives_empty_frames_with_the_same_columns(summary: Any) -> None:
    full = summary(example_flows())
    empty = summary(example_flows().iloc[:0])
    assert len(empty) == 0 and len(full) > 0
    assert list(empty.columns) == list(full.columns)
    assert empty.dtypes.astype(str).tolist() == full.dtypes.astype(str).tolist()


def test_any_index_and_unused_categories() -> None:
    df = flows({"orig": "10.0.0.1:1", "resp": "10.0.0.2:2"},
               {"orig": "10.0.0.2:2", "resp": "10.0.0.1:1"})
    df.index = [70, 30]
    df["conn_state"] = df["conn_state"].cat.add_categories(["REJ", "S0"])
    assert len(by_socket_pair(df)) == 1  # no rows for the unused icmp/udp or REJ/S0
    assert by_state(df)["conn_state"].tolist() == ["SF"]
    assert by_host(df)["flows"].tolist() == [2, 2]
