"""The flows table: every column of ``read_flows``, documented once, and its builder.

Each entry says what the column measures, where the number comes from and
when it is missing, in the manner of Zeek's ``Conn::Info``
(``base/protocols/conn/main.zeek``). The Zeek columns mean exactly what they
mean in Zeek's conn.log; the others are marked "beyond Zeek".
"""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd

from tracker.flows.records import END_REASONS, ORIG_REASONS, FlowRecords
from tracker.flows.states import CONN_STATES, CONNTRACK_STATES, MISSING, NETSTAT_STATES
from tracker.report.addresses import address_categoricals
from tracker.report.columns import Column

PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp6"}  # IANA protocol numbers
PORT_CLASSES = ("well_known", "registered", "dynamic")  # SEMANTICS.md 6, IANA RFC 6335

_TS = "datetime64[ns, UTC]"
FLOW_COLUMNS: tuple[Column, ...] = (
    Column("flow_id", "int64", "Flow number, unique in one run, in order of creation; the "
           "packets table's flow_id points here."),
    Column("first_ts", _TS, "Time of the flow's first packet (Zeek's ts)."),
    Column("last_ts", _TS, "Time of the last packet that counted (Zeek's last_time): packets "
           "with a bad checksum and TCP packets after both sides closed do not move it."),
    Column("duration", "timedelta64[ns]", "last_ts - first_ts (Zeek's duration; Zeek prints "
           "'-' when it is 0)."),
    Column("proto", "category", "Transport protocol: tcp, udp, icmp, icmp6, or the IP protocol "
           "number as text (Zeek's unknown_transport, with ip_proto)."),
    Column("orig_addr", "category", "Originator address (Zeek's id.orig_h), as Python's "
           "ipaddress prints it; IPv4 plain. See orig_reason for how it was chosen."),
    Column("orig_port", "int32", "Originator port (id.orig_p). ICMP: the message type. Other "
           "protocols: 0."),
    Column("resp_addr", "category", "Responder address (id.resp_h)."),
    Column("resp_port", "int32", "Responder port (id.resp_p). ICMP: the counterpart type of a "
           "request/reply pair (echo 8 <-> 0), else the code. Other protocols: 0."),
    Column("vlan", "Int32", "Outermost 802.1Q/802.1ad VLAN id of the first packet; <NA> "
           "when untagged. Part of the key only with FlowOptions(vlan_in_key=True)."),
    Column("service", "category", "Name of the responder port for the protocol (a port-based "
           "guess, not a payload check, unlike Zeek's service); empty when unknown or ICMP."),
    Column("port_class", "category", "IANA range of resp_port: well_known 0-1023, registered "
           "1024-49151, dynamic 49152-65535; <NA> for ICMP and others (beyond Zeek)."),
    Column("orig_reason", "category", "Why orig is the originator (beyond Zeek): syn (sent the "
           "bare SYN), synack (the other side sent a SYN-ACK), server_port (the other side "
           "uses a likely server port), first_packet (sent the first packet)."),
    Column("conn_state", "category", "Zeek's conn_state: S0 S1 SF REJ S2 S3 RSTO RSTR RSTOS0 "
           "RSTRH SH SHR OTH (SEMANTICS.md 4). UDP: SF, S0, SHR or OTH; others: OTH."),
    Column("history", "category", "Zeek's history letters (upper case: originator; S H A D F "
           "R I Q T W C ^). Empty for ICMP and other protocols, as Zeek's '-'."),
    Column("state", "category", "A middlebox view in Linux conntrack's words (beyond Zeek): "
           "TCP SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT CLOSE_WAIT LAST_ACK TIME_WAIT CLOSE; "
           "others UNREPLIED, REPLIED, ASSURED (both sides, on past 2 s)."),
    Column("orig_state", "category", "TCP: the state the originator's own netstat would print "
           "for its socket at the end of the flow, inferred from both sides' packets (beyond "
           "Zeek); <NA> for other protocols and when the host sent nothing to go on."),
    Column("resp_state", "category", "TCP: the responder's netstat state, as orig_state."),
    Column("end_reason", "category", "Why the flow ended (beyond Zeek): fin, rst, idle, reuse, "
           "active, evicted, eof, stopped (SEMANTICS.md 5)."),
    Column("orig_pkts", "int64", "Packets sent by the originator (Zeek's orig_pkts): a "
           "reassembled IP datagram is one packet; bad-checksum packets do not count."),
    Column("resp_pkts", "int64", "Packets sent by the responder (resp_pkts)."),
    Column("orig_ip_bytes", "int64", "Sum of the IP total length of orig's packets "
           "(orig_ip_bytes; IPv6: payload length + 40), from headers, not the captured length."),
    Column("resp_ip_bytes", "int64", "As orig_ip_bytes, for the responder (resp_ip_bytes)."),
    Column("orig_wire_bytes", "int64", "Sum of orig's frame lengths on the wire (pcap "
           "orig_len), all fragments of a datagram included (beyond Zeek)."),
    Column("resp_wire_bytes", "int64", "As orig_wire_bytes, for the responder."),
    Column("orig_bytes", "Int64", "Zeek's orig_bytes: TCP bytes of sequence space the "
           "originator covered (highest seq or ack minus the ISN, without SYN and FIN); UDP "
           "length - 8 summed; ICMP bytes after the 8-byte header; 0 for others. <NA> when "
           "duration is 0, as Zeek leaves it unset."),
    Column("resp_bytes", "Int64", "As orig_bytes, for the responder."),
    Column("orig_payload_bytes", "int64", "Transport payload bytes summed over orig's packets "
           "from the IP lengths; retransmissions count again (beyond Zeek)."),
    Column("resp_payload_bytes", "int64", "As orig_payload_bytes, for the responder."),
)


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
    with_ports = (r.proto == 6) | (r.proto == 17)
    try:
        services = importlib.import_module("tracker.services")
    except ImportError:  # the services table is not there yet: unknown everywhere
        blank = pd.Categorical.from_codes(np.zeros(len(r), np.int8), categories=[""])
        return blank, _coded(np.full(len(r), MISSING, np.uint8), PORT_CLASSES)
    pairs = np.stack([r.proto.astype(np.int64), r.resp_port.astype(np.int64)], axis=1)
    first, inv = factorize_rows(pairs)
    uniq = pairs[first]
    names = np.asarray(services.service_names(uniq[:, 0], uniq[:, 1]), dtype=object)
    names[(uniq[:, 0] != 6) & (uniq[:, 0] != 17)] = ""
    cats, codes = np.unique(names.astype(str), return_inverse=True)
    service = pd.Categorical.from_codes(codes[inv.reshape(-1)], categories=list(cats))
    klass = np.asarray(services.port_class(uniq[:, 1])).astype(str)
    kcodes = np.array([PORT_CLASSES.index(k) if k in PORT_CLASSES else MISSING for k in klass],
                      dtype=np.uint8)[inv.reshape(-1)] if len(uniq) else np.zeros(0, np.uint8)
    kcodes = np.where(with_ports, kcodes, MISSING).astype(np.uint8)
    return service, _coded(kcodes, PORT_CLASSES)


def _utc(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.to_datetime(ns.view("datetime64[ns]")).tz_localize("UTC")


def _nullable_int(values: np.ndarray, missing: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.arrays.IntegerArray(values.astype(np.int64), missing.copy())


def _history(history: np.ndarray) -> pd.Categorical:
    """History letters, decoded once per distinct history."""
    width = history.dtype.itemsize // 8  # S48: six uint64 words per history
    words = np.ascontiguousarray(history).view(np.uint64).reshape(len(history), width)
    first, codes = factorize_rows(words)
    names = [history[i].decode("ascii") for i in first]
    return pd.Categorical.from_codes(codes, categories=pd.Index(names, dtype=object))


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
    frame = pd.DataFrame({c.name: cols[c.name] for c in FLOW_COLUMNS})
    return frame


def describe_flows() -> str:
    """The flows column table as text, for help output and docs."""
    width = max(len(c.name) for c in FLOW_COLUMNS)
    return "\n".join(f"{c.name:<{width}}  {c.dtype:<20}  {c.doc}" for c in FLOW_COLUMNS)
