"""The packets DataFrame, built from decoded PacketBatch columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tracker.packets import PacketBatch, Status
from tracker.report.addresses import address_categoricals
from tracker.report.columns import PACKET_COLUMNS

_STATUS_NAMES = [s.name for s in Status]


def _nullable(values: np.ndarray, missing: np.ndarray, dtype: str) -> pd.api.extensions.ExtensionArray:
    """A pandas nullable array from values and a mask, without a Python object per row."""
    if dtype == "boolean":
        return pd.arrays.BooleanArray(values.astype(bool), missing.copy())
    return pd.arrays.IntegerArray(values.astype(dtype.lower()), missing.copy())


def _flow_ids(flow_ids: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.full(n, -1, np.int64) if flow_ids is None else flow_ids
    return np.maximum(ids, 0), ids < 0


def packets_dataframe(pb: PacketBatch, flow_ids: np.ndarray | None = None,
                      outer_flow_ids: np.ndarray | None = None) -> pd.DataFrame:
    """One row per frame, with the columns of ``PACKET_COLUMNS`` in that order.

    ``flow_ids`` (int64 per row, -1 for none) fills ``flow_id``; without it the
    column is all <NA>. With ``outer_flow_ids`` (rows of every tunnel level, the
    flow of each row's carrier or -1) the columns of TUNNEL_PACKET_COLUMNS follow.
    """
    is_ip = pb.ip_version > 0
    has_ports = pb.src_port >= 0
    is_tcp = pb.tcp_hdr_len >= 0
    src, dst = address_categoricals([(pb.src_hi, pb.src_lo, is_ip), (pb.dst_hi, pb.dst_lo, is_ip)])
    cols = {
        "frame": pb.record + 1,
        "ts": pd.to_datetime(pb.ts_ns.view("datetime64[ns]")).tz_localize("UTC"),
        "wire_len": pb.wire_len,
        "caplen": pb.caplen,
        "status": pd.Categorical.from_codes(pb.status.astype(np.int8), categories=_STATUS_NAMES),
        "vlan": _nullable(pb.vlan, pb.vlan < 0, "Int32"),
        "ip_version": _nullable(pb.ip_version, ~is_ip, "UInt8"),
        "proto": _nullable(pb.proto, pb.proto < 0, "Int16"),
        "src_addr": src,
        "dst_addr": dst,
        "src_port": _nullable(pb.src_port, ~has_ports, "Int32"),
        "dst_port": _nullable(pb.dst_port, ~has_ports, "Int32"),
        "ip_len": _nullable(pb.ip_len, pb.ip_len < 0, "Int64"),
        "ip_id": _nullable(pb.ip_id, pb.ip_id < 0, "Int64"),
        "frag_offset": _nullable(pb.frag_offset, ~is_ip, "Int32"),
        "more_fragments": _nullable(pb.more_fragments, ~is_ip, "boolean"),
        "tcp_flags": _nullable(pb.tcp_flags, ~is_tcp, "UInt16"),
        "seq": _nullable(pb.seq, ~is_tcp, "UInt32"),
        "ack": _nullable(pb.ack, ~is_tcp, "UInt32"),
        "window": _nullable(pb.window, ~is_tcp, "Int32"),
        "payload_len": _nullable(pb.payload_len, pb.payload_len < 0, "Int64"),
        "icmp_type": _nullable(pb.icmp_type, pb.icmp_type < 0, "Int16"),
        "icmp_code": _nullable(pb.icmp_code, pb.icmp_code < 0, "Int16"),
        "flow_id": _nullable(*_flow_ids(flow_ids, len(pb)), "Int64"),
    }
    assert list(cols) == [c.name for c in PACKET_COLUMNS]
    if outer_flow_ids is not None:
        cols["depth"] = pd.arrays.IntegerArray(pb.depth.copy(), np.zeros(len(pb), np.bool_))
        cols["outer_flow_id"] = _nullable(*_flow_ids(outer_flow_ids, len(pb)), "Int64")
    return pd.DataFrame(cols)
