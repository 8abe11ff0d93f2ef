"""The packets DataFrame, built from decoded PacketBatch columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tracker.packets import PacketBatch, Status
from tracker.report.addresses import AddressBook
from tracker.report.columns import PACKET_COLUMNS

_STATUS_NAMES = [s.name for s in Status]


def _missing(pb: PacketBatch) -> dict[str, np.ndarray]:
    """Where each nullable column (a PacketBatch field of the same name) is missing."""
    is_ip = pb.ip_version > 0
    no_ports = pb.src_port < 0
    no_tcp = pb.tcp_hdr_len < 0
    return {"vlan": pb.vlan < 0, "ip_version": ~is_ip, "proto": pb.proto < 0,
            "src_port": no_ports, "dst_port": no_ports, "ip_len": pb.ip_len < 0,
            "ip_id": pb.ip_id < 0, "frag_offset": ~is_ip, "more_fragments": ~is_ip,
            "tcp_flags": no_tcp, "seq": no_tcp, "ack": no_tcp, "window": no_tcp,
            "payload_len": pb.payload_len < 0, "icmp_type": pb.icmp_type < 0,
            "icmp_code": pb.icmp_code < 0}


# The nullable columns' pandas dtypes, in the frame's order.
_NULLABLE = {"vlan": "Int32", "ip_version": "UInt8", "proto": "Int16", "src_port": "Int32",
             "dst_port": "Int32", "ip_len": "Int64", "ip_id": "Int64", "frag_offset": "Int32",
             "more_fragments": "boolean", "tcp_flags": "UInt16", "seq": "UInt32",
             "ack": "UInt32", "window": "Int32", "payload_len": "Int64", "icmp_type": "Int16",
             "icmp_code": "Int16"}


# Where each address ends in its IP header: RFC 791 section 3.1, RFC 8200 section 3.
_V4_SRC_END, _V4_DST_END, _V6_SRC_END, _V6_DST_END = 16, 20, 24, 40


def captured_addresses(pb: PacketBatch) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose source and destination addresses were captured whole: a header cut by
    the snaplen keeps the fields before the cut, and half an address is none (tshark
    shows none either)."""
    is_ip = pb.ip_version > 0
    v6 = pb.ip_version == 6
    src = is_ip & (pb.ip_caplen >= np.where(v6, _V6_SRC_END, _V4_SRC_END))
    dst = is_ip & (pb.ip_caplen >= np.where(v6, _V6_DST_END, _V4_DST_END))
    return src, dst


class PacketRows:
    """Packet rows gathered batch by batch, kept only as the frame's own columns (final
    dtypes, and a mask where a value is missing): the decoded batches are let go as they
    come, and ``frame`` joins each column once, so reading adds little more than the
    frame itself to the process."""

    def __init__(self) -> None:
        self._parts: dict[str, list[np.ndarray]] = {}
        self._addresses = AddressBook()

    def add(self, pb: PacketBatch, flow_ids: np.ndarray | None = None,
            outer_flow_ids: np.ndarray | None = None) -> None:
        """The rows of ``pb``; ``flow_ids`` (int64 per row, -1: none) fill flow_id, and
        ``outer_flow_ids`` (rows of every tunnel level) add the tunnel columns."""
        src_known, dst_known = captured_addresses(pb)
        cols: dict[str, np.ndarray] = {
            "frame": pb.record + 1, "ts": pb.ts_ns, "wire_len": pb.wire_len,
            "caplen": pb.caplen, "status": pb.status.astype(np.int8),
            "src_addr": self._addresses.codes(pb.src_hi, pb.src_lo, src_known),
            "dst_addr": self._addresses.codes(pb.dst_hi, pb.dst_lo, dst_known)}
        for name, missing in _missing(pb).items():
            kind = _NULLABLE[name]
            cols[name] = getattr(pb, name).astype(bool if kind == "boolean" else kind.lower())
            cols[name + "/na"] = missing
        ids = np.full(len(pb), -1, np.int64) if flow_ids is None else flow_ids
        cols["flow_id"], cols["flow_id/na"] = np.maximum(ids, 0), ids < 0
        if outer_flow_ids is not None:
            cols["depth"] = pb.depth
            cols["outer_flow_id"] = np.maximum(outer_flow_ids, 0)
            cols["outer_flow_id/na"] = outer_flow_ids < 0
        for name, values in cols.items():
            self._parts.setdefault(name, []).append(values)

    def _join(self, name: str) -> np.ndarray:
        """One column whole; its pieces are let go."""
        parts = self._parts.pop(name)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def frame(self, late: list[tuple[np.ndarray, np.ndarray]] | None = None) -> pd.DataFrame:
        """The DataFrame of the rows added (see ``packets_dataframe``); ``late`` gives
        (frame records, flow ids) of fragments whose datagram completed afterwards."""
        if not self._parts:
            self.add(PacketBatch.empty(0))
        frame = self._join("frame")
        ids, no_id = self._join("flow_id"), self._join("flow_id/na")
        for records, flows in late or []:
            at = np.searchsorted(frame, records + 1)
            ids[at], no_id[at] = np.maximum(flows, 0), flows < 0
        src, dst = self._addresses.categoricals(self._join("src_addr"), self._join("dst_addr"))
        cols: dict[str, object] = {
            "frame": frame,
            "ts": pd.DatetimeIndex(self._join("ts").view("datetime64[ns]")).tz_localize("UTC"),
            "wire_len": self._join("wire_len"), "caplen": self._join("caplen"),
            "status": pd.Categorical.from_codes(self._join("status"), categories=_STATUS_NAMES),
        }
        for name, kind in _NULLABLE.items():
            values, missing = self._join(name), self._join(name + "/na")
            cols[name] = (pd.arrays.BooleanArray(values, missing, copy=False) if kind == "boolean"
                          else pd.arrays.IntegerArray(values, missing, copy=False))
            if name == "proto":
                cols["src_addr"], cols["dst_addr"] = src, dst
        cols["flow_id"] = pd.arrays.IntegerArray(ids, no_id, copy=False)
        assert list(cols) == [c.name for c in PACKET_COLUMNS]
        if "depth" in self._parts:
            cols["depth"] = pd.arrays.IntegerArray(self._join("depth"),
                                                   np.zeros(len(frame), np.bool_), copy=False)
            cols["outer_flow_id"] = pd.arrays.IntegerArray(
                self._join("outer_flow_id"), self._join("outer_flow_id/na"), copy=False)
        return pd.DataFrame(cols, copy=False)


def packets_dataframe(pb: PacketBatch, flow_ids: np.ndarray | None = None,
                      outer_flow_ids: np.ndarray | None = None) -> pd.DataFrame:
    """One row per frame, with the columns of ``PACKET_COLUMNS`` in that order.

    ``flow_ids`` (int64 per row, -1 for none) fills ``flow_id``; without it the
    column is all <NA>. With ``outer_flow_ids`` (rows of every tunnel level, the
    flow of each row's carrier or -1) the columns of TUNNEL_PACKET_COLUMNS follow.
    """
    rows = PacketRows()
    rows.add(pb, flow_ids, outer_flow_ids)
    return rows.frame()
