"""The flows DataFrame, built from FlowRecords columns; the columns are documented in columns.py."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tracker import services
from tracker.flows.labels import CONN_STATES, CONNTRACK_STATES, MISSING, NETSTAT_STATES
from tracker.flows.records import END_REASONS, ORIG_REASONS, FlowRecords
from tracker.packets import PROTO_TCP, PROTO_UDP
from tracker.report.addresses import address_categoricals
from tracker.report.columns import FLOW_COLUMNS, PORT_CLASSES, PROTO_NAMES


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


def _coded(codes: np.ndarray, names: tuple[str, ...]) -> pd.Categorical:
    """A Categorical with fixed categories from uint8 codes (MISSING -> <NA>)."""
    c = codes.astype(np.int16)
    c[codes == MISSING] = -1
    return pd.Categorical.from_codes(c, categories=list(names))


def _by_unique(values: np.ndarray, name_of: dict[int, str] | None = None) -> pd.Categorical:
    """A Categorical of text made once per unique value (never a string per row)."""
    uniq, inv = np.unique(values, return_inverse=True)
    names = [(name_of or {}).get(int(v), str(int(v))) for v in uniq]
    return pd.Categorical.from_codes(inv.reshape(-1), categories=pd.Index(names, dtype=object))


def _services(r: FlowRecords) -> tuple[pd.Categorical, pd.Categorical]:
    """(service, port_class) from tracker.services, per unique (proto, port)."""
    with_ports = (r.proto == PROTO_TCP) | (r.proto == PROTO_UDP)
    pairs = np.stack([r.proto.astype(np.int64), r.resp_port.astype(np.int64)], axis=1)
    first, inv = factorize_rows(pairs)
    uniq = pairs[first]
    names = np.asarray(services.service_names(uniq[:, 0], uniq[:, 1]), dtype=object)
    names[(uniq[:, 0] != PROTO_TCP) & (uniq[:, 0] != PROTO_UDP)] = ""
    service = _categorical(names.astype(str), inv.reshape(-1))
    klass = np.asarray(services.port_class(uniq[:, 1])).astype(str)
    kcodes = np.array([PORT_CLASSES.index(k) if k in PORT_CLASSES else MISSING for k in klass],
                      dtype=np.uint8)[inv.reshape(-1)] if len(uniq) else np.zeros(0, np.uint8)
    kcodes = np.where(with_ports, kcodes, MISSING).astype(np.uint8)
    return service, _coded(kcodes, PORT_CLASSES)


def _utc(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.to_datetime(ns.view("datetime64[ns]")).tz_localize("UTC")


def _nullable_int(values: np.ndarray, missing: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.arrays.IntegerArray(values.astype(np.int64), missing.copy())


def _categorical(names: np.ndarray, codes: np.ndarray) -> pd.Categorical:
    """Row i is ``names[codes[i]]``; an empty name is <NA> (Zeek's unset '-')."""
    cats, to_cat = np.unique(names, return_inverse=True)
    to_cat = to_cat.reshape(-1)
    keep = cats != ""
    new_code = np.where(keep, np.cumsum(keep) - 1, -1)
    return pd.Categorical.from_codes(new_code[to_cat[codes]] if len(codes) else codes,
                                     categories=pd.Index(cats[keep].tolist(), dtype=object))


def _history(history: np.ndarray) -> pd.Categorical:
    """History letters, decoded once per distinct history."""
    width = history.dtype.itemsize // 8  # S48: six uint64 words per history
    words = np.ascontiguousarray(history).view(np.uint64).reshape(len(history), width)
    first, codes = factorize_rows(words)
    names = np.array([history[i].decode("ascii") for i in first], dtype=object)
    return _categorical(names.astype(str) if len(names) else np.zeros(0, str), codes)


def _id_tuples(ids: np.ndarray, count: np.ndarray) -> np.ndarray:
    """An object column: row i holds the tuple ids[i, :count[i]]. Untunnelled rows share
    one empty tuple, so only tunnelled flows cost a Python object."""
    out = np.empty(len(count), dtype=object)
    out.fill(())
    for i in np.flatnonzero(count).tolist():
        out[i] = tuple(ids[i, :count[i]].tolist())
    return out


def flows_dataframe(records: FlowRecords) -> pd.DataFrame:
    """One row per flow, with the columns of ``FLOW_COLUMNS`` in that order.

    No flows gives an empty frame with the same columns and dtypes.

    Examples
    --------
    >>> df = flows_dataframe(records)  # doctest: +SKIP
    >>> df[["orig_addr", "orig_port", "resp_addr", "resp_port", "conn_state", "history"]]
    ... # doctest: +SKIP
         orig_addr  orig_port    resp_addr  resp_port conn_state   history
    0  192.168.1.5       1099  192.168.1.7         80         SF  ShADadFf
    """
    r = records
    service, port_class = _services(r)
    every = np.ones(len(r.orig_hi), dtype=bool)
    orig_addr, resp_addr = address_categoricals([(r.orig_hi, r.orig_lo, every),
                                                 (r.resp_hi, r.resp_lo, every)])
    cols = {
        "flow_id": r.flow_id.astype(np.int64),
        "first_ts": _utc(r.first_ts),
        "last_ts": _utc(r.last_ts),
        "duration": pd.to_timedelta((r.last_ts - r.first_ts).view("timedelta64[ns]")),
        "proto": _by_unique(r.proto, PROTO_NAMES),
        "orig_addr": orig_addr,
        "orig_port": r.orig_port.astype(np.int32),
        "resp_addr": resp_addr,
        "resp_port": r.resp_port.astype(np.int32),
        "vlan": pd.arrays.IntegerArray(r.vlan.astype(np.int32), r.vlan < 0),
        "service": service,
        "port_class": port_class,
        "orig_reason": _coded(r.orig_reason, ORIG_REASONS),
        "conn_state": _coded(r.conn_state, CONN_STATES),
        "history": _history(r.history),
        "state": _coded(r.state, CONNTRACK_STATES),
        "orig_state": _coded(r.orig_state, NETSTAT_STATES),
        "resp_state": _coded(r.resp_state, NETSTAT_STATES),
        "end_reason": _coded(r.end_reason, END_REASONS),
    }
    for side in ("orig", "resp"):
        for what in ("pkts", "ip_bytes", "wire_bytes"):
            cols[f"{side}_{what}"] = getattr(r, f"{side}_{what}").astype(np.int64)
    for side in ("orig", "resp"):
        cols[f"{side}_bytes"] = _nullable_int(getattr(r, f"{side}_bytes"), ~r.bytes_set)
    for side in ("orig", "resp"):
        cols[f"{side}_payload_bytes"] = getattr(r, f"{side}_payload_bytes").astype(np.int64)
    cols["missed_bytes"] = r.missed_bytes.astype(np.int64)
    cols["tunnel_parents"] = _id_tuples(r.tunnel_parents, r.n_parents)
    frame = pd.DataFrame({c.name: cols[c.name] for c in FLOW_COLUMNS})
    return frame
