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
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tracker.errors import options_checked
from tracker.flows.key import icmp_two_way
from tracker.packets import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP
from tracker.processes import SocketOwners
from tracker.report.columns import PROTO_NAMES
from tracker.report.networks import Network, parse_networks
from tracker.services import service_names

VIEW_COLUMNS = ("Proto", "Local Address", "Foreign Address", "State", "Pkts Sent", "Pkts Rcvd",
                "Bytes Sent", "Bytes Rcvd", "Start", "Duration", "conn_state", "history")
_NUMBER = {name: number for number, name in PROTO_NAMES.items()}


def inside(addresses: pd.Series, nets: list[Network]) -> np.ndarray:
    """Whether each address is inside one of ``nets`` (decided once per distinct address)."""
    codes, uniq = pd.factorize(addresses.astype(object))
    hit = np.array([any(ipaddress.ip_address(a) in n for n in nets) for a in uniq], dtype=bool)
    return hit[codes] if len(uniq) else np.zeros(len(addresses), dtype=bool)


def _socket(addr: pd.Series, port: np.ndarray, proto: np.ndarray, numeric: bool) -> pd.Series:
    """``ip:port`` / ``[v6]:port`` with service names unless numeric; bare ip without ports."""
    text = addr.astype(object).astype(str)
    v6 = text.str.contains(":", regex=False)
    text = text.where(~v6, "[" + text + "]")
    with_port = np.isin(proto, (PROTO_TCP, PROTO_UDP))
    names = service_names(proto, np.where(with_port, port, -1), numeric=numeric)
    names = np.where(names == "", port.astype(str), names)
    return text.where(~with_port, text + ":" + names)


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
    nets = parse_networks(local)
    names = flows["proto"].astype(str)
    proto_n = names.map(lambda p: _NUMBER.get(p, p)).astype(np.int64).to_numpy()
    orig_local = np.ones(len(flows), dtype=bool)
    if nets:  # both or neither inside: the originator is local, as without --local
        orig_local = inside(flows["orig_addr"], nets) | ~inside(flows["resp_addr"], nets)
    op, rp = flows["orig_port"].to_numpy(), flows["resp_port"].to_numpy()
    orig_sock = _socket(flows["orig_addr"], op, proto_n, numeric)
    resp_sock = _socket(flows["resp_addr"], rp, proto_n, numeric)
    icmp = np.isin(proto_n, (PROTO_ICMP, PROTO_ICMPV6))
    if icmp.any():
        o_lab, r_lab = _icmp(proto_n, op, rp)
        orig_sock = orig_sock.where(~icmp, orig_sock + o_lab)
        resp_sock = resp_sock.where(~icmp, resp_sock + r_lab)
    tcp = proto_n == PROTO_TCP
    o_state = flows["orig_state"].astype(object).where(tcp, flows["state"].astype(object))
    r_state = flows["resp_state"].astype(object).where(tcp, flows["state"].astype(object))

    def pick(orig: pd.Series | np.ndarray, resp: pd.Series | np.ndarray) -> np.ndarray:
        return np.where(orig_local, np.asarray(orig, dtype=object), np.asarray(resp, dtype=object))

    view = {
        "Proto": flows["proto"].astype(str).to_numpy(),
        "Local Address": pick(orig_sock, resp_sock),
        "Foreign Address": pick(resp_sock, orig_sock),
        "State": pick(o_state, r_state),
        "Pkts Sent": pick(flows["orig_pkts"], flows["resp_pkts"]).astype(np.int64),
        "Pkts Rcvd": pick(flows["resp_pkts"], flows["orig_pkts"]).astype(np.int64),
        "Bytes Sent": pick(flows["orig_ip_bytes"], flows["resp_ip_bytes"]).astype(np.int64),
        "Bytes Rcvd": pick(flows["resp_ip_bytes"], flows["orig_ip_bytes"]).astype(np.int64),
        "Start": flows["first_ts"].to_numpy(),
        "Duration": flows["duration"].to_numpy(),
        "conn_state": flows["conn_state"].astype(object).to_numpy(),
        "history": flows["history"].astype(object).to_numpy(),
    }
    out = pd.DataFrame(view, index=flows.index)
    out["State"] = out["State"].astype(object).where(out["State"].notna(), None)
    if processes is not None:
        ends = [pick(flows[f"{a}_{b}"].astype(object), flows[f"{c}_{b}"].astype(object))
                for a, c in (("orig", "resp"), ("resp", "orig")) for b in ("addr", "port")]
        out.insert(4, "PID/Program", [processes.lookup(p, str(la), int(lp), str(ra), int(rp))
                                      for p, la, lp, ra, rp in zip(names, *ends, strict=True)])
    if flows["vlan"].notna().any():
        out.insert(1, "VLAN", flows["vlan"].to_numpy())
    if "tunnel_parents" in flows and flows["tunnel_parents"].map(len).any():
        out["Tunnel"] = tunnel_labels(flows)
    return out


# The UDP tunnels by their responder port (ZEEK-FACTS 6.1), for the Tunnel column.
TUNNEL_NAMES = {4789: "vxlan", 6081: "geneve", 2152: "gtp", 2123: "gtp", 3544: "teredo",
                5072: "ayiya", 4754: "gre-udp"}


def tunnel_labels(flows: pd.DataFrame) -> list[str]:
    """How each flow was carried: ``vxlan 10.0.0.1-10.0.0.2`` (the outer flow's tunnel by
    its responder port, and its two addresses), ``ip-tunnel`` for IP-in-IP and GRE (no flow
    of their own), ``+N`` when it came through N more; '' when not tunnelled."""
    by_id = flows.set_index("flow_id")[["resp_port", "orig_addr", "resp_addr"]]
    known = set(by_id.index)
    labels = []
    for parents in flows["tunnel_parents"]:
        if not parents:
            labels.append("")
            continue
        first = parents[0]
        if first in known:
            port, a, b = by_id.loc[first]
            label = f"{TUNNEL_NAMES.get(int(port), 'udp')} {a}-{b}"
        else:
            label = "ip-tunnel"
        labels.append(label + (f" +{len(parents) - 1}" if len(parents) > 1 else ""))
    return labels
