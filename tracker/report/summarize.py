"""Summaries of a flows DataFrame: per socket pair, host, service, state, tunnel; top talkers.

Every function takes the flows table (columns in ``tracker/report/columns.py``)
and returns a new DataFrame with a fresh RangeIndex. An empty flows table gives
an empty frame with the same columns. In every summary:

- ``packets`` = orig_pkts + resp_pkts;
- ``bytes`` = orig_ip_bytes + resp_ip_bytes: IP bytes, headers included (what
  Zeek's ``*_ip_bytes`` and NFStream's ``bytes_ip`` count), not Zeek's
  sequence-space ``*_bytes``;
- ``payload_bytes`` = orig_payload_bytes + resp_payload_bytes;
- addresses sort numerically (IPv4 before IPv6), not as text.

``example_flows()`` builds the small table that the examples below use.
"""

from __future__ import annotations

import ipaddress

import numpy as np
import pandas as pd

from tracker.errors import OptionError, options_checked
from tracker.report.columns import VALUES

STATE_COLUMNS = ("conn_state", "state", "orig_state", "resp_state")
TOP_BY = ("bytes", "packets", "flows", "peers")

_TS = "datetime64[ns, UTC]"
_PAIR_COLUMNS = {"proto": "object", "addr_a": "object", "port_a": "int32", "addr_b": "object",
                 "port_b": "int32", "flows": "int64", "packets": "int64", "bytes": "int64",
                 "payload_bytes": "int64", "first_ts": _TS, "last_ts": _TS,
                 "conn_states": "object", "states": "object"}
_HOST_COLUMNS = {"addr": "object", "flows": "int64", "flows_originated": "int64",
                 "flows_received": "int64", "packets_sent": "int64",
                 "packets_received": "int64", "bytes_sent": "int64", "bytes_received": "int64",
                 "peers": "int64"}
_SERVICE_COLUMNS = {"proto": "object", "service": "object", "flows": "int64",
                    "packets": "int64", "bytes": "int64", "payload_bytes": "int64",
                    "clients": "int64", "servers": "int64", "ports": "int64"}
_PORT_CLASS_COLUMNS = {"proto": "object", "port_class": "object", "flows": "int64",
                       "packets": "int64", "bytes": "int64", "ports": "int64"}
_TUNNEL_COLUMNS = {"tunnel": "object", "flows": "int64", "packets": "int64", "bytes": "int64",
                   "payload_bytes": "int64", "hosts": "int64"}
_TOP_COLUMNS = {"addr": "object", "flows": "int64", "packets": "int64", "bytes": "int64",
                "bytes_sent": "int64", "bytes_received": "int64", "peers": "int64"}


@options_checked
def by_socket_pair(flows: pd.DataFrame) -> pd.DataFrame:
    """All flows of each unordered socket pair, one row per pair.

    ``addr_a:port_a`` is the lower socket (address, then port), so both
    directions and every flow of a reused pair land on one row. ``conn_states``
    and ``states`` list the distinct conn_state / state values seen, sorted.

    Examples
    --------
    >>> pairs = by_socket_pair(example_flows())
    >>> pairs[["proto", "addr_a", "port_a", "addr_b", "port_b", "flows", "conn_states"]]
      proto       addr_a  port_a       addr_b  port_b  flows conn_states
    0   tcp  192.168.1.5    1099  192.168.1.7      80      2      REJ,SF
    1   udp     10.0.0.2      53  192.168.1.5   40000      1          SF
    2   udp     10.0.0.2      53  192.168.1.7   40001      1          S0
    """
    if flows.empty:
        return _empty(_PAIR_COLUMNS)
    (rank_o, rank_r), addrs = _address_ranks(flows["orig_addr"], flows["resp_addr"])
    port_o = flows["orig_port"].to_numpy(np.int64)
    port_r = flows["resp_port"].to_numpy(np.int64)
    swap = (rank_o > rank_r) | ((rank_o == rank_r) & (port_o > port_r))
    proto, protos = _coded(flows["proto"])
    work = _totals(flows).assign(
        proto=proto,
        rank_a=np.where(swap, rank_r, rank_o), port_a=np.where(swap, port_r, port_o),
        rank_b=np.where(swap, rank_o, rank_r), port_b=np.where(swap, port_o, port_r),
        first_ts=_utc_ns(flows["first_ts"]), last_ts=_utc_ns(flows["last_ts"]))
    g = work.groupby(["proto", "rank_a", "port_a", "rank_b", "port_b"], sort=True)
    out = g.agg(flows=("packets", "size"), packets=("packets", "sum"), bytes=("bytes", "sum"),
                payload_bytes=("payload_bytes", "sum"), first_ts=("first_ts", "min"),
                last_ts=("last_ts", "max")).reset_index()
    gid = g.ngroup().to_numpy()
    out["conn_states"] = _distinct_joined(gid, flows["conn_state"], len(out))
    out["states"] = _distinct_joined(gid, flows["state"], len(out))
    out["proto"] = protos[out["proto"]]
    out["addr_a"], out["addr_b"] = addrs[out["rank_a"]], addrs[out["rank_b"]]
    return _typed(out, _PAIR_COLUMNS)


@options_checked
def by_host(flows: pd.DataFrame) -> pd.DataFrame:
    """Per address: flows it originated and received, packets and bytes it
    sent and received, and how many distinct peers it talked to.

    A flow from a host to itself counts once as originated and once as received.

    Examples
    --------
    >>> hosts = by_host(example_flows())
    >>> hosts[["addr", "flows_originated", "flows_received", "bytes_sent", "peers"]]
              addr  flows_originated  flows_received  bytes_sent  peers
    0     10.0.0.2                 0               2         100      2
    1  192.168.1.5                 3               0        1320      2
    2  192.168.1.7                 1               2         910      2
    """
    if flows.empty:
        return _empty(_HOST_COLUMNS)
    (rank_o, rank_r), addrs = _address_ranks(flows["orig_addr"], flows["resp_addr"])
    t = _totals(flows)
    n = len(flows)
    rank = np.concatenate([rank_o, rank_r])
    work = pd.DataFrame({
        "rank": rank, "originated": np.r_[np.ones(n, np.int64), np.zeros(n, np.int64)],
        "packets_sent": np.concatenate([t["orig_pkts"], t["resp_pkts"]]),
        "packets_received": np.concatenate([t["resp_pkts"], t["orig_pkts"]]),
        "bytes_sent": np.concatenate([t["orig_ip_bytes"], t["resp_ip_bytes"]]),
        "bytes_received": np.concatenate([t["resp_ip_bytes"], t["orig_ip_bytes"]])})
    out = work.groupby("rank", sort=True).agg(
        flows=("originated", "size"), flows_originated=("originated", "sum"),
        packets_sent=("packets_sent", "sum"), packets_received=("packets_received", "sum"),
        bytes_sent=("bytes_sent", "sum"), bytes_received=("bytes_received", "sum"),
    ).reset_index()
    out["flows_received"] = out["flows"] - out["flows_originated"]
    peer = np.concatenate([rank_r, rank_o])
    out["peers"] = _count_distinct(rank, peer, len(addrs))[out["rank"]]
    out["addr"] = addrs[out["rank"]]
    return _typed(out, _HOST_COLUMNS)


@options_checked
def by_service(flows: pd.DataFrame) -> pd.DataFrame:
    """Per (proto, service): flows, traffic, distinct clients (originators),
    servers (responders) and responder ports. The service is a port-based
    guess (tracker/services.py); "" gathers the ports without a name.

    Examples
    --------
    >>> by_service(example_flows())[["proto", "service", "flows", "bytes", "clients", "servers"]]
      proto service  flows  bytes  clients  servers
    0   tcp    http      2   2100        1        1
    1   udp  domain      2    230        2        1
    """
    if flows.empty:
        return _empty(_SERVICE_COLUMNS)
    (proto, protos), (service, services) = _coded(flows["proto"]), _coded(flows["service"])
    g = _totals(flows).assign(proto=proto, service=service).groupby(["proto", "service"])
    out = g.agg(flows=("packets", "size"), packets=("packets", "sum"), bytes=("bytes", "sum"),
                payload_bytes=("payload_bytes", "sum")).reset_index()
    gid, n_groups = g.ngroup().to_numpy(), len(out)
    out["clients"] = _count_distinct(gid, _coded(flows["orig_addr"])[0], n_groups)
    out["servers"] = _count_distinct(gid, _coded(flows["resp_addr"])[0], n_groups)
    out["ports"] = _count_distinct(gid, flows["resp_port"].to_numpy(np.int64), n_groups)
    out["proto"], out["service"] = protos[out["proto"]], services[out["service"]]
    return _typed(out, _SERVICE_COLUMNS)


@options_checked
def by_port_class(flows: pd.DataFrame) -> pd.DataFrame:
    """Per (proto, port class of the responder port): flows, traffic and distinct ports.

    Port classes are the IANA ranges: well_known 0-1023, registered
    1024-49151, dynamic 49152-65535; protocols without ports have none ("").

    Examples
    --------
    >>> by_port_class(example_flows())[["proto", "port_class", "flows", "bytes", "ports"]]
      proto  port_class  flows  bytes  ports
    0   tcp  well_known      2   2100      1
    1   udp  well_known      2    230      1
    """
    if flows.empty:
        return _empty(_PORT_CLASS_COLUMNS)
    (proto, protos), (klass, classes) = _coded(flows["proto"]), _coded(flows["port_class"])
    g = _totals(flows).assign(proto=proto, klass=klass).groupby(["proto", "klass"])
    out = g.agg(flows=("packets", "size"), packets=("packets", "sum"),
                bytes=("bytes", "sum")).reset_index()
    out["ports"] = _count_distinct(g.ngroup().to_numpy(), flows["resp_port"].to_numpy(np.int64),
                                   len(out))
    out["proto"], out["port_class"] = protos[out["proto"]], classes[out["klass"]]
    return _typed(out, _PORT_CLASS_COLUMNS)


@options_checked
def by_tunnel(flows: pd.DataFrame) -> pd.DataFrame:
    """Per tunnel the flows came through (their first tunnel parent, named as the netstat
    view's Tunnel column: ``vxlan 10.0.0.1-10.0.0.2`` for a UDP tunnel's outer flow,
    ``ip-tunnel`` for IP-in-IP and GRE): the inner flows, their traffic and the distinct
    inner hosts. Untunnelled flows are left out, so a capture without tunnels gives an
    empty frame.

    Examples
    --------
    >>> by_tunnel(example_flows()).empty
    True
    """
    from tracker.report.netstat import tunnel_labels

    if flows.empty or "tunnel_parents" not in flows or not flows["tunnel_parents"].map(len).any():
        return _empty(_TUNNEL_COLUMNS)
    label = pd.Series(tunnel_labels(flows), index=flows.index).str.replace(
        r" \+\d+$", "", regex=True)
    inner = (label != "").to_numpy()
    work = _totals(flows)[inner].assign(tunnel=label[inner].to_numpy())
    g = work.groupby("tunnel", sort=True)
    out = g.agg(flows=("packets", "size"), packets=("packets", "sum"), bytes=("bytes", "sum"),
                payload_bytes=("payload_bytes", "sum")).reset_index()
    hosts = flows[inner].assign(tunnel=label[inner].to_numpy()).groupby("tunnel", sort=True)
    out["hosts"] = [len(set(rows["orig_addr"].astype(str)) | set(rows["resp_addr"].astype(str)))
                    for _, rows in hosts]
    return _typed(out, _TUNNEL_COLUMNS)


@options_checked
def by_state(flows: pd.DataFrame, column: str = "conn_state") -> pd.DataFrame:
    """Flows per (proto, state value) of one state column, with its meaning.

    ``column`` is "conn_state" (Zeek's), "state" (conntrack's view), or
    "orig_state" / "resp_state" (what each host's netstat would print).
    ``share`` is the fraction of all flows; flows without a value (UDP has no
    netstat state) show as "".

    Examples
    --------
    >>> by_state(example_flows())[["proto", "conn_state", "flows", "share", "bytes"]]
      proto conn_state  flows  share  bytes
    0   tcp        REJ      1   0.25    120
    1   tcp         SF      1   0.25   1980
    2   udp         S0      1   0.25     70
    3   udp         SF      1   0.25    160
    >>> by_state(example_flows(), "state")[["state", "flows", "meaning"]]
           state  flows                                  meaning
    0      CLOSE      1                    TCP: reset, or closed
    1  TIME_WAIT      1        TCP: both closed and acknowledged
    2    REPLIED      1                not TCP: both sides sent
    3  UNREPLIED      1             not TCP: only one side sent
    """
    if column not in STATE_COLUMNS:
        raise OptionError(f"by_state: column must be one of {STATE_COLUMNS}, got {column!r}")
    columns = {"proto": "object", column: "object", "flows": "int64", "share": "float64",
               "packets": "int64", "bytes": "int64", "meaning": "object"}
    if flows.empty:
        return _empty(columns)
    (proto, protos), (value, values) = _coded(flows["proto"]), _coded(flows[column])
    out = _totals(flows).assign(proto=proto, value=value).groupby(["proto", "value"]).agg(
        flows=("packets", "size"), packets=("packets", "sum"),
        bytes=("bytes", "sum")).reset_index()
    out["proto"], out[column] = protos[out["proto"]], values[out["value"]]
    out["share"] = out["flows"] / len(flows)
    out["meaning"] = [VALUES[column].get(v, "") for v in out[column]]
    return _typed(out, columns)


@options_checked
def top_talkers(flows: pd.DataFrame, n: int = 10, by: str = "bytes") -> pd.DataFrame:
    """The ``n`` addresses with the most traffic, sent plus received.

    ``by`` is "bytes" (IP bytes), "packets", "flows" or "peers"; ties keep
    address order.

    Examples
    --------
    >>> top_talkers(example_flows(), n=2)
              addr  flows  packets  bytes  bytes_sent  bytes_received  peers
    0  192.168.1.5      3       15   2260        1320             940      2
    1  192.168.1.7      3       14   2170         910            1260      2
    """
    if by not in TOP_BY:
        raise OptionError(f"top_talkers: by must be one of {TOP_BY}, got {by!r}")
    if int(n) < 0:
        raise OptionError(f"top_talkers: n must be >= 0, got {n!r}")
    hosts = by_host(flows)
    hosts["packets"] = hosts["packets_sent"] + hosts["packets_received"]
    hosts["bytes"] = hosts["bytes_sent"] + hosts["bytes_received"]
    top = hosts.sort_values(by, ascending=False, kind="stable").head(int(n))
    return _typed(top.reset_index(drop=True), _TOP_COLUMNS)


def example_flows() -> pd.DataFrame:
    """A four-flow table for the examples: a TCP port reused after an SF
    connection (REJ), a DNS exchange and an unanswered DNS query."""
    ts = pd.to_datetime([0, 10, 20, 30], unit="s", utc=True).as_unit("ns")
    flows = pd.DataFrame({
        "flow_id": [0, 1, 2, 3],
        "first_ts": ts, "last_ts": ts + pd.Timedelta(seconds=1),
        "proto": pd.Categorical(["tcp", "tcp", "udp", "udp"]),
        "orig_addr": pd.Categorical(["192.168.1.5", "192.168.1.5", "192.168.1.5",
                                     "192.168.1.7"]),
        "orig_port": np.array([1099, 1099, 40000, 40001], np.int32),
        "resp_addr": pd.Categorical(["192.168.1.7", "192.168.1.7", "10.0.0.2", "10.0.0.2"]),
        "resp_port": np.array([80, 80, 53, 53], np.int32),
        "service": pd.Categorical(["http", "http", "domain", "domain"]),
        "port_class": pd.Categorical(["well_known"] * 4),
        "conn_state": pd.Categorical(["SF", "REJ", "SF", "S0"]),
        "state": pd.Categorical(["TIME_WAIT", "CLOSE", "REPLIED", "UNREPLIED"]),
        "orig_pkts": [6, 1, 1, 1], "resp_pkts": [5, 1, 1, 0],
        "orig_ip_bytes": [1200, 60, 60, 70], "resp_ip_bytes": [780, 60, 100, 0],
        "orig_payload_bytes": [900, 0, 32, 42], "resp_payload_bytes": [500, 0, 72, 0],
    })
    flows["duration"] = flows["last_ts"] - flows["first_ts"]
    return flows


def _totals(flows: pd.DataFrame) -> pd.DataFrame:
    """Per-flow counters as int64 arrays, plus their two-direction sums."""
    cols = ["orig_pkts", "resp_pkts", "orig_ip_bytes", "resp_ip_bytes",
            "orig_payload_bytes", "resp_payload_bytes"]
    t = pd.DataFrame({c: flows[c].to_numpy(np.int64) for c in cols})
    t["packets"] = t["orig_pkts"] + t["resp_pkts"]
    t["bytes"] = t["orig_ip_bytes"] + t["resp_ip_bytes"]
    t["payload_bytes"] = t["orig_payload_bytes"] + t["resp_payload_bytes"]
    return t


def _coded(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes, labels): the distinct values as sorted text (missing as ""), and
    each row's index into them. Text is made once per distinct value."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes, cats = col.cat.codes.to_numpy(np.int64), col.cat.categories
    else:
        codes, cats = pd.factorize(col)
    text = np.array([str(c) for c in cats] + [""], dtype=object)
    labels, remap = np.unique(text, return_inverse=True)
    return remap[np.where(codes < 0, len(cats), codes)], labels


def _count_distinct(gid: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Number of distinct non-negative ``values`` in each group 0..n_groups-1."""
    k = int(values.max()) + 1 if len(values) else 1
    ok = values >= 0
    pairs = _sorted_unique(gid[ok] * k + values[ok])
    return np.bincount(pairs // k, minlength=n_groups)


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    """np.unique by sorting: numpy 2.4's plain np.unique hashes, and on 2 million
    distinct int64 it takes 1.8 s against 0.04 s for a sort."""
    x = np.sort(x)
    return x[np.r_[True, x[1:] != x[:-1]]] if len(x) else x


def _address_ranks(*cols: pd.Series) -> tuple[list[np.ndarray], np.ndarray]:
    """Numeric sort ranks of the addresses of several columns, and rank -> text.

    Only distinct addresses are parsed (with ipaddress); text that is not an
    address sorts after all addresses, as text.
    """
    coded = [_coded(c) for c in cols]
    every, where = np.unique(np.concatenate([labels for _, labels in coded]),
                             return_inverse=True)
    keys = [_address_key(str(u)) for u in every]
    order = np.array(sorted(range(len(every)), key=keys.__getitem__), dtype=np.int64)
    rank_of = np.empty(len(every), np.int64)
    rank_of[order] = np.arange(len(every))
    offsets = np.cumsum([0] + [len(labels) for _, labels in coded])
    ranks = [rank_of[where[start + codes]] for (codes, _), start in zip(coded, offsets)]
    return ranks, every[order]


def _address_key(text: str) -> tuple[int, int, str]:
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        return (9, 0, text)
    return (a.version, int(a), "")


def _distinct_joined(gid: np.ndarray, col: pd.Series, n_groups: int) -> np.ndarray:
    """For each group, its distinct non-empty values of ``col``, sorted, joined by ","."""
    codes, labels = _coded(col)
    k = len(labels)
    present = (labels != "")[codes]
    pairs = _sorted_unique(gid[present] * k + codes[present])  # by group, then value
    groups, names = pairs // k, labels[pairs % k]
    out = np.full(n_groups, "", dtype=object)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]]) if len(pairs) else pairs
    sizes = np.diff(np.r_[starts, len(pairs)])
    out[groups[starts[sizes == 1]]] = names[starts[sizes == 1]]  # most groups: one value
    for first, size in zip(starts[sizes > 1], sizes[sizes > 1]):  # a loop over mixed groups only
        out[groups[first]] = ",".join(names[first: first + size])
    return out


def _utc_ns(col: pd.Series) -> np.ndarray:
    """Timestamps as naive datetime64[ns] in UTC (NaT kept)."""
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    return col.to_numpy(dtype="datetime64[ns]")


def _empty(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in columns.items()})


def _typed(out: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """The summary's columns, in order, with their documented dtypes."""
    typed = {}
    for c, d in columns.items():
        col = out[c]
        if d == _TS and not isinstance(col.dtype, pd.DatetimeTZDtype):
            col = pd.to_datetime(col).dt.tz_localize("UTC")
        typed[c] = col.astype(d)
    return pd.DataFrame(typed)
