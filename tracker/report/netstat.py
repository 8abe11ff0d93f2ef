"""The netstat view of a flows frame: one line per flow as ``netstat -t -u`` prints a socket.

>>> import tracker
>>> flows = tracker.read_flows("captures/tcp-handshake-fin.pcap")
>>> view = netstat_view(flows)
>>> view.iloc[0][["Proto", "Local Address", "Foreign Address", "State"]].tolist()
['tcp', '192.0.2.10:49152', '198.51.100.20:http', 'TIME_WAIT']
>>> netstat_view(flows, numeric=True).iloc[0]["Foreign Address"]
'198.51.100.20:80'

The local side is the endpoint inside ``local`` (a list of networks, as
``--local``), else the originator. State is the local endpoint's netstat
state for TCP (what netstat on that host would print) and conntrack's view
for other protocols (netstat prints none for UDP). Sockets print as
``ip:port`` and ``[v6]:port``; ports as service names unless ``numeric``, as
``netstat -n``. ICMP flows show the message type (and code) instead of ports.
Sent and received counts are the local side's.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tracker.errors import options_checked
from tracker.flows.key import icmp_two_way
from tracker.packets import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP
from tracker.processes import SocketOwners
from tracker.report.columns import PROTO_NAMES
from tracker.report.flow_columns import Coded, Masked, Values
from tracker.report.networks import Network, parse_networks
from tracker.services import service_names

if TYPE_CHECKING:
    import pandas as pd

VIEW_COLUMNS = ("Proto", "Local Address", "Foreign Address", "State", "Pkts Sent", "Pkts Rcvd",
                "Bytes Sent", "Bytes Rcvd", "Start", "Duration", "conn_state", "history")
_NUMBER = {name: number for number, name in PROTO_NAMES.items()}

# The flows' columns the view reads, as numpy arrays by FLOW_COLUMNS name: text as
# objects (proto, addresses, states), numbers, and two more: vlan_missing (bool) and,
# for the Tunnel column, tunnel_parents (tuples). Start, Duration, conn_state and
# history pass through as given. From a DataFrame (netstat_view) or from FlowRecords'
# columns without pandas (record_arrays: the command's table).
FlowArrays = Mapping[str, Any]


def inside(addresses: Iterable[Any], nets: list[Network]) -> np.ndarray:
    """Whether each address is inside one of ``nets`` (decided once per distinct address)."""
    text = np.asarray(addresses, dtype=object).astype(str)
    uniq, codes = np.unique(text, return_inverse=True)
    hit = np.array([any(ipaddress.ip_address(a) in n for n in nets) for a in uniq], dtype=bool)
    return hit[codes.reshape(-1)] if len(uniq) else np.zeros(len(text), dtype=bool)


def _socket(addr: np.ndarray, port: np.ndarray, proto: np.ndarray, numeric: bool
            ) -> np.ndarray:
    """``ip:port`` / ``[v6]:port`` with service names unless numeric; bare ip without ports."""
    text = addr.astype(str)
    text = np.where(np.strings.find(text, ":") >= 0, np.strings.add(np.strings.add("[", text),
                                                                    "]"), text)
    with_port = np.isin(proto, (PROTO_TCP, PROTO_UDP))
    names = service_names(proto, np.where(with_port, port, -1), numeric=numeric)
    names = np.where(names == "", port.astype(str), names).astype(str)
    return np.where(with_port, np.strings.add(np.strings.add(text, ":"), names), text)


def _icmp(proto: np.ndarray, orig_port: np.ndarray, resp_port: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """(originator label, responder label): ``type T`` each for request/reply pairs,
    ``type T code C`` on the originator for the others."""
    pair = icmp_two_way(proto, orig_port)
    t = np.char.add(" type ", orig_port.astype(str))
    c = resp_port.astype(str)
    orig = np.where(pair, t, np.char.add(t, np.char.add(" code ", c)))
    resp = np.where(pair, np.char.add(" type ", c), "")
    return orig, resp


def _proto_numbers(names: np.ndarray) -> np.ndarray:
    """IP protocol numbers of protocol names (an unnamed protocol's name is its number)."""
    uniq, codes = np.unique(names.astype(str), return_inverse=True)
    numbers = np.array([int(_NUMBER.get(u, u)) for u in uniq], dtype=np.int64)
    return numbers[codes.reshape(-1)] if len(uniq) else np.zeros(0, np.int64)


def _missing_to_none(values: np.ndarray) -> np.ndarray:
    """Objects with every missing value (None, NaN) as None."""
    out = np.asarray(values, dtype=object).copy()
    out[[v is None or (isinstance(v, float) and math.isnan(v)) for v in out]] = None
    return out


def view_columns(flows: FlowArrays, *, nets: list[Network], numeric: bool,
                 processes: SocketOwners | None = None) -> dict[str, np.ndarray]:
    """The columns of the netstat view (netstat_view says which), in order."""
    names = np.asarray(flows["proto"], dtype=object)
    proto_n = _proto_numbers(names)
    orig_local = np.ones(len(names), dtype=bool)
    if nets:  # both or neither inside: the originator is local, as without --local
        orig_local = inside(flows["orig_addr"], nets) | ~inside(flows["resp_addr"], nets)
    op, rp = np.asarray(flows["orig_port"]), np.asarray(flows["resp_port"])
    orig_sock = _socket(np.asarray(flows["orig_addr"]), op, proto_n, numeric)
    resp_sock = _socket(np.asarray(flows["resp_addr"]), rp, proto_n, numeric)
    icmp = np.isin(proto_n, (PROTO_ICMP, PROTO_ICMPV6))
    if icmp.any():
        o_lab, r_lab = _icmp(proto_n, op, rp)
        orig_sock = np.where(icmp, np.strings.add(orig_sock, o_lab), orig_sock)
        resp_sock = np.where(icmp, np.strings.add(resp_sock, r_lab), resp_sock)
    tcp = proto_n == PROTO_TCP
    state = np.asarray(flows["state"], dtype=object)
    o_state = np.where(tcp, np.asarray(flows["orig_state"], dtype=object), state)
    r_state = np.where(tcp, np.asarray(flows["resp_state"], dtype=object), state)

    def pick(orig: Any, resp: Any) -> np.ndarray:
        return np.where(orig_local, np.asarray(orig, dtype=object), np.asarray(resp, dtype=object))

    def counts(orig: str, resp: str) -> np.ndarray:
        return np.where(orig_local, np.asarray(flows[orig]), np.asarray(flows[resp])
                        ).astype(np.int64)

    view: dict[str, np.ndarray] = {"Proto": names.astype(str).astype(object)}
    if not np.asarray(flows["vlan_missing"]).all():
        view["VLAN"] = flows["vlan"]
    view |= {
        "Local Address": pick(orig_sock, resp_sock), "Foreign Address": pick(resp_sock, orig_sock),
        "State": _missing_to_none(pick(o_state, r_state)),
    }
    if processes is not None:
        ends = [pick(flows[f"{a}_{b}"], flows[f"{c}_{b}"])
                for a, c in (("orig", "resp"), ("resp", "orig")) for b in ("addr", "port")]
        view["PID/Program"] = np.array(
            [processes.lookup(p, str(la), int(lp), str(ra), int(rp))
             for p, la, lp, ra, rp in zip(names, *ends, strict=True)], dtype=object)
    view |= {
        "Pkts Sent": counts("orig_pkts", "resp_pkts"),
        "Pkts Rcvd": counts("resp_pkts", "orig_pkts"),
        "Bytes Sent": counts("orig_ip_bytes", "resp_ip_bytes"),
        "Bytes Rcvd": counts("resp_ip_bytes", "orig_ip_bytes"),
        "Start": flows["first_ts"], "Duration": flows["duration"],
        "conn_state": flows["conn_state"], "history": flows["history"],
    }
    parents = flows["tunnel_parents"]
    if any(map(len, parents)):
        view["Tunnel"] = np.array(_tunnel_labels(flows), dtype=object)
    return view


def _frame_arrays(flows: pd.DataFrame) -> dict[str, Any]:
    """The FlowArrays of a flows frame."""
    out: dict[str, Any] = {name: flows[name].astype(object).to_numpy() for name in (
        "proto", "orig_addr", "resp_addr", "state", "orig_state", "resp_state", "conn_state",
        "history")}
    for name in ("orig_port", "resp_port", "orig_pkts", "resp_pkts", "orig_ip_bytes",
                 "resp_ip_bytes", "first_ts", "duration"):
        out[name] = flows[name].to_numpy()
    # flow_id only names the tunnels' outer flows: a frame of fewer columns still has a view
    out["flow_id"] = flows["flow_id"].to_numpy() if "flow_id" in flows else \
        np.full(len(flows), -1, np.int64)
    out["vlan"] = flows["vlan"].array  # Int32: the view's VLAN column stays integers
    out["vlan_missing"] = flows["vlan"].isna().to_numpy()
    out["tunnel_parents"] = np.empty(len(flows), dtype=object)
    out["tunnel_parents"].fill(())  # none, unless the frame has the column
    if "tunnel_parents" in flows:
        out["tunnel_parents"] = flows["tunnel_parents"].to_numpy()
    return out


def _text(values: Values) -> np.ndarray:
    """Coded text as objects (None where missing); other columns as they are."""
    if isinstance(values, Coded):
        return np.array([*values.names, None], dtype=object)[values.codes]
    if isinstance(values, Masked):
        out = values.values.astype(object)
        out[values.missing] = None
        return out
    return values


# The columns the view and its footer read, of flow_columns' (the others are left alone).
_VIEW_READS = ("flow_id", "proto", "orig_addr", "orig_port", "resp_addr", "resp_port", "vlan",
               "state", "orig_state", "resp_state", "conn_state", "history", "orig_pkts",
               "resp_pkts", "orig_ip_bytes", "resp_ip_bytes", "tunnel_parents")


def record_arrays(cols: Mapping[str, Values]) -> dict[str, Any]:
    """The FlowArrays of flow_columns' columns (no pandas): times as datetime64[ns] UTC,
    the duration as timedelta64[ns]."""
    out = {name: _text(cols[name]) for name in _VIEW_READS}
    out["first_ts"] = np.asarray(cols["first_ts"]).view("datetime64[ns]")
    out["last_ts"] = np.asarray(cols["last_ts"]).view("datetime64[ns]")
    out["duration"] = np.asarray(cols["duration"]).view("timedelta64[ns]")
    vlan = cols["vlan"]
    assert isinstance(vlan, Masked)
    out["vlan_missing"] = vlan.missing
    return out


@options_checked
def netstat_view(flows: pd.DataFrame, *, local: str | Sequence[str] | None = None,
                 numeric: bool = False, processes: SocketOwners | None = None) -> pd.DataFrame:
    """The netstat view of a flows frame (see the module docstring), in the frame's order.

    Columns: Proto, Local Address, Foreign Address, State, Pkts Sent, Pkts
    Rcvd, Bytes Sent and Bytes Rcvd (IP bytes, the local side's), Start,
    Duration, conn_state and history; VLAN after Proto when any flow has one;
    PID/Program after State with ``processes`` (``tracker.processes.socket_owners()``
    on the capturing host, as ``netstat -p``: '-' when no process holds the socket);
    Tunnel last when any flow came through a tunnel (``tunnel_labels``).
    """
    import pandas as pd

    view = view_columns(_frame_arrays(flows), nets=parse_networks(local), numeric=numeric,
                        processes=processes)
    out = pd.DataFrame(view, index=flows.index)
    out["State"] = pd.Series(view["State"], index=flows.index, dtype=object)  # None, not NaN
    return out


# The UDP tunnels by their responder port (ZEEK-FACTS 6.1), for the Tunnel column.
TUNNEL_NAMES = {4789: "vxlan", 6081: "geneve", 2152: "gtp", 2123: "gtp", 3544: "teredo",
                5072: "ayiya", 4754: "gre-udp"}


def tunnel_labels(flows: pd.DataFrame) -> list[str]:
    """How each flow was carried: ``vxlan 10.0.0.1-10.0.0.2`` (the outer flow's tunnel by
    its responder port, and its two addresses), ``ip-tunnel`` for IP-in-IP and GRE (no flow
    of their own), ``+N`` when it came through N more; '' when not tunnelled."""
    return _tunnel_labels(_frame_arrays(flows))


def _tunnel_labels(flows: FlowArrays) -> list[str]:
    by_id = {int(i): (int(port), a, b) for i, port, a, b in zip(
        flows["flow_id"], flows["resp_port"], flows["orig_addr"], flows["resp_addr"],
        strict=True)}
    labels = []
    for parents in flows["tunnel_parents"]:
        if not parents:
            labels.append("")
            continue
        outer = by_id.get(parents[0])
        label = "ip-tunnel" if outer is None else \
            f"{TUNNEL_NAMES.get(outer[0], 'udp')} {outer[1]}-{outer[2]}"
        labels.append(label + (f" +{len(parents) - 1}" if len(parents) > 1 else ""))
    return labels
