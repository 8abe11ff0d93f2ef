"""The flows table's columns computed with numpy alone, for every output to wrap.

``flow_columns`` turns FlowRecords into the columns of ``FLOW_COLUMNS`` (columns.py
documents them) as plain arrays: numbers, nanosecond times, and coded text
(``Coded``: codes into names made once per distinct value, never a string per
row). flows.py wraps them into the pandas DataFrame; export.py into an Arrow
table for the CSV writer, so a CSV export never loads pandas (0.3-0.45 s of
import, and a DataFrame built and converted again per chunk).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracker import services
from tracker.flows.labels import CONN_STATES, CONNTRACK_STATES, MISSING, NETSTAT_STATES
from tracker.flows.records import END_REASONS, ORIG_REASONS, FlowRecords
from tracker.packets import PROTO_TCP, PROTO_UDP
from tracker.report.addresses import format_addresses
from tracker.report.columns import PORT_CLASSES, PROTO_NAMES


@dataclass(frozen=True, slots=True)
class Coded:
    """Text as codes: row i is ``names[codes[i]]``; code -1 is missing (<NA>)."""

    codes: np.ndarray  # int32
    names: list[str]
    fixed: bool = False  # names are a coded column's fixed list of values (columns.VALUES)


@dataclass(frozen=True, slots=True)
class Masked:
    """Integers that may be missing (pandas' Int32/Int64)."""

    values: np.ndarray
    missing: np.ndarray  # bool


# A column: numbers (int64 ns for the times and the duration, a tuple per row for
# tunnel_parents), coded text, or integers that may be missing.
Values = np.ndarray | Coded | Masked


def factorize_rows(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of one row per distinct value, in sorted order; code of every row).

    ``words`` is (n, k) of integers; rows are compared whole. One lexsort over
    plain integer columns: much faster than np.unique on structured rows.
    """
    n = len(words)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort(words.T[::-1])  # column 0 is the most significant
    w = words[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (w[1:] != w[:-1]).any(axis=1)
    codes = np.empty(n, dtype=np.int64)
    codes[order] = np.cumsum(new) - 1
    return order[new], codes


def _fixed(codes: np.ndarray, names: tuple[str, ...]) -> Coded:
    """Codes of a fixed list of names (uint8, MISSING -> missing)."""
    c = codes.astype(np.int32)
    c[codes == MISSING] = -1
    return Coded(c, list(names), fixed=True)


def _named(names: np.ndarray, codes: np.ndarray) -> Coded:
    """Row i is ``names[codes[i]]``, names sorted; an empty name is missing (Zeek's '-')."""
    cats, to_cat = np.unique(names, return_inverse=True)
    to_cat = to_cat.reshape(-1)
    keep = cats != ""
    new_code = np.where(keep, np.cumsum(keep) - 1, -1)
    out = new_code[to_cat[codes]] if len(codes) else np.zeros(0, np.int64)
    return Coded(out.astype(np.int32), cats[keep].tolist())


def _by_unique(values: np.ndarray, name_of: dict[int, str]) -> Coded:
    """Text made once per distinct value, in numeric order (the number when unnamed)."""
    uniq, inv = np.unique(values, return_inverse=True)
    names = [name_of.get(int(v), str(int(v))) for v in uniq]
    return Coded(inv.reshape(-1).astype(np.int32), names)


def _services(r: FlowRecords) -> tuple[Coded, Coded]:
    """(service, port_class) from tracker.services, per distinct (proto, port)."""
    with_ports = (r.proto == PROTO_TCP) | (r.proto == PROTO_UDP)
    pairs = np.stack([r.proto.astype(np.int64), r.resp_port.astype(np.int64)], axis=1)
    first, inv = factorize_rows(pairs)
    uniq = pairs[first]
    names = np.asarray(services.service_names(uniq[:, 0], uniq[:, 1]), dtype=object)
    names[(uniq[:, 0] != PROTO_TCP) & (uniq[:, 0] != PROTO_UDP)] = ""
    service = _named(names.astype(str), inv.reshape(-1))
    klass = np.asarray(services.port_class(uniq[:, 1])).astype(str)
    kcodes = np.array([PORT_CLASSES.index(k) if k in PORT_CLASSES else MISSING for k in klass],
                      dtype=np.uint8)[inv.reshape(-1)] if len(uniq) else np.zeros(0, np.uint8)
    kcodes = np.where(with_ports, kcodes, MISSING).astype(np.uint8)
    return service, _fixed(kcodes, PORT_CLASSES)


def _history(history: np.ndarray) -> Coded:
    """History letters, decoded once per distinct history."""
    width = history.dtype.itemsize // 8  # S48: six uint64 words per history
    words = np.ascontiguousarray(history).view(np.uint64).reshape(len(history), width)
    first, codes = factorize_rows(words)
    names = np.array([history[i].decode("ascii") for i in first], dtype=object)
    return _named(names.astype(str) if len(names) else np.zeros(0, str), codes)


def coded_addresses(hi: np.ndarray, lo: np.ndarray) -> Coded:
    """Addresses from their (hi, lo) halves, named in numeric order (IPv4 sits at
    ::ffff:0:0/96), each distinct one formatted once."""
    both = np.stack([hi, lo], axis=1).astype(np.uint64)
    first, codes = factorize_rows(both)
    return Coded(codes.astype(np.int32), format_addresses(both[first, 0], both[first, 1]))


def _addresses(r: FlowRecords) -> tuple[Coded, Coded]:
    """(orig_addr, resp_addr) sharing one list of names, so that the two columns compare."""
    both = coded_addresses(np.concatenate([r.orig_hi, r.resp_hi]),
                           np.concatenate([r.orig_lo, r.resp_lo]))
    n = len(r.orig_hi)
    return Coded(both.codes[:n], both.names), Coded(both.codes[n:], both.names)


def _id_tuples(ids: np.ndarray, count: np.ndarray) -> np.ndarray:
    """An object column: row i holds the tuple ids[i, :count[i]]. Untunnelled rows share
    one empty tuple, so only tunnelled flows cost a Python object."""
    out = np.empty(len(count), dtype=object)
    out.fill(())
    for i in np.flatnonzero(count).tolist():
        out[i] = tuple(ids[i, :count[i]].tolist())
    return out


def flow_columns(records: FlowRecords) -> dict[str, Values]:
    """The columns of ``FLOW_COLUMNS``, by name, in that order."""
    r = records
    service, port_class = _services(r)
    orig_addr, resp_addr = _addresses(r)
    cols: dict[str, Values] = {
        "flow_id": r.flow_id.astype(np.int64),
        "first_ts": r.first_ts.astype(np.int64),
        "last_ts": r.last_ts.astype(np.int64),
        "duration": (r.last_ts - r.first_ts).astype(np.int64),
        "proto": _by_unique(r.proto, PROTO_NAMES),
        "orig_addr": orig_addr,
        "orig_port": r.orig_port.astype(np.int32),
        "resp_addr": resp_addr,
        "resp_port": r.resp_port.astype(np.int32),
        "vlan": Masked(r.vlan.astype(np.int32), r.vlan < 0),
        "service": service,
        "port_class": port_class,
        "orig_reason": _fixed(r.orig_reason, ORIG_REASONS),
        "conn_state": _fixed(r.conn_state, CONN_STATES),
        "history": _history(r.history),
        "state": _fixed(r.state, CONNTRACK_STATES),
        "orig_state": _fixed(r.orig_state, NETSTAT_STATES),
        "resp_state": _fixed(r.resp_state, NETSTAT_STATES),
        "end_reason": _fixed(r.end_reason, END_REASONS),
    }
    for side in ("orig", "resp"):
        for what in ("pkts", "ip_bytes", "wire_bytes"):
            cols[f"{side}_{what}"] = getattr(r, f"{side}_{what}").astype(np.int64)
    for side in ("orig", "resp"):
        cols[f"{side}_bytes"] = Masked(getattr(r, f"{side}_bytes").astype(np.int64),
                                       ~r.bytes_set)
    for side in ("orig", "resp"):
        cols[f"{side}_payload_bytes"] = getattr(r, f"{side}_payload_bytes").astype(np.int64)
    cols["missed_bytes"] = r.missed_bytes.astype(np.int64)
    cols["tunnel_parents"] = _id_tuples(r.tunnel_parents, r.n_parents)
    return cols
