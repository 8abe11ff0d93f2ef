"""The documented tables: every column of ``read_packets`` and ``read_flows``, every value.

Each column entry says what the column measures, where the number comes from
and when it is missing (``<NA>``), in the manner of Zeek's ``Conn::Info``
(``base/protocols/conn/main.zeek``). The Zeek columns of the flows table mean
exactly what they mean in Zeek's conn.log; the others are marked "beyond
Zeek". Each value of a coded column (``conn_state``, ``history`` letters, the
netstat and conntrack states, ``end_reason``, ``orig_reason``, ...) has one
line of meaning in ``VALUES``. This module is the one place of both;
``tracker columns`` prints them, ``describe_columns`` and ``column_values``
return them, and docs/flow-record.md explains them in prose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracker.errors import OptionError, options_checked
from tracker.flows.labels import CONN_STATES, CONNTRACK_STATES, NETSTAT_STATES
from tracker.flows.records import END_REASONS, ORIG_REASONS
from tracker.packets import Status

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    dtype: str  # the pandas dtype of the DataFrame column
    doc: str


PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp6"}  # IANA protocol numbers
PORT_CLASSES = ("well_known", "registered", "dynamic")  # IANA ranges, RFC 6335 section 6

TIME = "datetime64[ns, UTC]"  # the dtypes of time and duration columns
DURATION = "timedelta64[ns]"

PACKET_COLUMNS: tuple[Column, ...] = (
    Column("frame", "int64", "1-based record number in the capture (tshark's frame.number)."),
    Column("ts", TIME, "Capture timestamp, full file precision; NaT when the file's timestamp "
           "does not fit int64 nanoseconds (after 2262)."),
    Column("wire_len", "int64", "Frame length on the wire (pcap orig_len)."),
    Column("caplen", "int64", "Bytes captured of the frame (at most the snaplen)."),
    Column("status", "category", "OK, or why the row is not a normal packet (see its values)."),
    Column("vlan", "Int32", "Outermost 802.1Q/802.1ad VLAN id; <NA> when untagged."),
    Column("ip_version", "UInt8", "4 or 6; <NA> when the frame carries no IP header."),
    Column("proto", "Int16", "IP protocol number of the transport header (6 TCP, 17 UDP, 1 ICMP, "
           "58 ICMPv6, ...), after IPv6 extension headers; the header field, as tshark's "
           "ip.proto. <NA> when not IP."),
    Column("src_addr", "category", "Source IP address as Python's ipaddress prints it; <NA> when "
           "not IP, or when the snaplen cut the header before the address's last byte."),
    Column("dst_addr", "category", "Destination IP address, as src_addr."),
    Column("src_port", "Int32", "TCP/UDP source port; <NA> for other protocols and non-first "
           "fragments."),
    Column("dst_port", "Int32", "TCP/UDP destination port; <NA> as src_port."),
    Column("ip_len", "Int64", "IP length from the header: IPv4 total length, IPv6 payload length "
           "+ 40. Not the captured length, so snaplen-cut captures still count right."),
    Column("ip_id", "Int64", "IPv4 identification, or the IPv6 fragment header's identification."),
    Column("frag_offset", "Int32", "Fragment offset in bytes; 0 when not a fragment."),
    Column("more_fragments", "boolean", "The IP more-fragments flag."),
    Column("tcp_flags", "UInt16", "The nine TCP flag bits (NS CWR ECE URG ACK PSH RST SYN FIN), "
           "as a number (0x012 is SYN-ACK); <NA> when not TCP."),
    Column("seq", "UInt32", "TCP sequence number."),
    Column("ack", "UInt32", "TCP acknowledgment number."),
    Column("window", "Int32", "TCP window field, unscaled."),
    Column("payload_len", "Int64", "Transport payload bytes computed from the IP and transport "
           "header lengths (never from the captured length)."),
    Column("icmp_type", "Int16", "ICMP or ICMPv6 type."),
    Column("icmp_code", "Int16", "ICMP or ICMPv6 code."),
    Column("flow_id", "Int64", "The flow this packet belongs to (read_flows' flow_id, same "
           "options); every fragment of a reassembled datagram gets its flow's id, and so does "
           "a TCP packet whose header is cut short (it makes or finds its flow without being "
           "counted, as in Zeek); <NA> when the packet is in no flow (not IP, malformed, bad "
           "IPv4 header checksum when verified, an IP datagram that never completed)."),
)


from tracker.report.columns import Column

# The packets table's columns with read_packets(..., tunnels=True): one row per packet,
# the packets inside tunnels in rows of their own after their frame's.
TUNNEL_PACKET_COLUMNS: tuple[Column, ...] = (
    Column("depth", "UInt8", "Tunnel levels around the packet: 0 for the frame's own "
           "(outermost) packet, 1 for the packet inside its tunnel, and so on (tunnels inside "
           "tunnels, to Zeek's depth of 4). An IP-in-IP or GRE packet at depth 0 is in no flow: "
           "the packet inside it is (flow_id)."),
    Column("outer_flow_id", "Int64", "For a packet carried by a UDP tunnel (VXLAN, Geneve, "
           "GTP, Teredo, AYIYA): the flow of the UDP packet carrying it, its flow's "
           "tunnel_parents; <NA> at depth 0 and inside IP tunnels."),
)

FLOW_COLUMNS: tuple[Column, ...] = (
    Column("flow_id", "int64", "Flow number, unique in one run, in order of creation; the "
           "packets table's flow_id points here."),
    Column("first_ts", TIME, "Time of the flow's first packet (Zeek's ts)."),
    Column("last_ts", TIME, "Time of the last packet that counted (Zeek's last_time): packets "
           "with a bad checksum and TCP packets after both sides closed do not move it."),
    Column("duration", DURATION, "last_ts - first_ts (Zeek's duration; Zeek prints "
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
           "guess, not a payload check, unlike Zeek's service); <NA> when unknown or not "
           "TCP/UDP."),
    Column("port_class", "category", "IANA range of resp_port: well_known 0-1023, registered "
           "1024-49151, dynamic 49152-65535; <NA> for ICMP and others (beyond Zeek)."),
    Column("orig_reason", "category", "Why orig is the originator (beyond Zeek): syn (sent the "
           "bare SYN), synack (the other side sent a SYN-ACK), server_port (the other side "
           "uses a likely server port), first_packet (sent the first packet)."),
    Column("conn_state", "category", "Zeek's conn_state: S0 S1 SF REJ S2 S3 RSTO RSTR RSTOS0 "
           "RSTRH SH SHR OTH. UDP: SF, S0, SHR or OTH; others: OTH."),
    Column("history", "category", "Zeek's history letters (upper case: originator; S H A D F "
           "R I Q T W C G X ^). <NA> when there is none (ICMP, other protocols), Zeek's '-'."),
    Column("state", "category", "A middlebox view in Linux conntrack's words (beyond Zeek): "
           "TCP SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT CLOSE_WAIT LAST_ACK TIME_WAIT CLOSE; "
           "others UNREPLIED, REPLIED, ASSURED (both sides, on past 2 s)."),
    Column("orig_state", "category", "TCP: the state the originator's own netstat would print "
           "for its socket at the end of the flow, inferred from both sides' packets (beyond "
           "Zeek); <NA> for other protocols and when the host sent nothing to go on."),
    Column("resp_state", "category", "TCP: the responder's netstat state, as orig_state."),
    Column("end_reason", "category", "Why the flow ended (beyond Zeek): fin, rst, idle, reuse, "
           "active, evicted, eof, stopped, interrupted, error; open in a live snapshot."),
    Column("orig_pkts", "int64", "Packets sent by the originator (Zeek's orig_pkts): a "
           "reassembled IP datagram is one packet; bad-checksum packets do not count; the "
           "one packet during which Zeek's DNS or NTP analyzer flips the roles counts for "
           "the other side, as in Zeek (history D^)."),
    Column("resp_pkts", "int64", "Packets sent by the responder (resp_pkts)."),
    Column("orig_ip_bytes", "int64", "Sum of the IP total length of orig's packets "
           "(orig_ip_bytes; IPv6: payload length + 40), from headers, not the captured length."),
    Column("resp_ip_bytes", "int64", "As orig_ip_bytes, for the responder (resp_ip_bytes)."),
    Column("orig_wire_bytes", "int64", "Sum of orig's frame lengths on the wire (pcap "
           "orig_len), all fragments of a datagram included (beyond Zeek)."),
    Column("resp_wire_bytes", "int64", "As orig_wire_bytes, for the responder."),
    Column("orig_bytes", "Int64", "Zeek's orig_bytes: TCP bytes of sequence space the "
           "originator covered (highest seq or ack minus the ISN, without SYN and FIN); UDP "
           "length - 8 summed (a length field under 8 subtracts; a total that went negative "
           "starts anew with the next datagram and counts 0 if it stays so, as Zeek); ICMP "
           "bytes after the 8-byte header; 0 for others. <NA> when duration is 0, as Zeek "
           "leaves it unset."),
    Column("resp_bytes", "Int64", "As orig_bytes, for the responder."),
    Column("orig_payload_bytes", "int64", "Transport payload bytes summed over orig's packets "
           "from the IP lengths; retransmissions count again (beyond Zeek)."),
    Column("resp_payload_bytes", "int64", "As orig_payload_bytes, for the responder."),
    Column("missed_bytes", "int64", "Zeek's missed_bytes: bytes of TCP content that were "
           "never captured but acknowledged by the other side (content gaps; history G/g), "
           "counted while both sides are established. 0 for other protocols."),
    Column("tunnel_parents", "object", "The tunnels this flow's packets "
           "came through (Zeek's tunnel_parents): the flow_id of each immediate outer UDP "
           "flow (VXLAN, Geneve, GTP, Teredo, AYIYA), or, for IP-in-IP and GRE, which have "
           "no flow of their own, an id of the tunnel (one per outer address pair, from the "
           "same counter as flow_id); the first packet's, then one more per change of tunnel, "
           "up to 5 changes (a 6th adds X to history). A tuple of ints, () for untunnelled "
           "flows; in CSV the ids joined by ',' (quoted), in the zeek format the parents' "
           "uids."),
)

# One line of meaning per value of each coded column. Upper-case history
# letters are the originator's; the same letter in lower case is the responder's.
VALUES: dict[str, dict[str, str]] = {
    "status": {
        "OK": "a normal packet: every header it has was decoded",
        "TRUNCATED": "a header is cut short by the snaplen; the fields before the cut are kept",
        "NOT_IP": "the link layer carries something else (ARP, LLDP, ...)",
        "UNSUPPORTED_LINK": "the link type or an encapsulation is not decoded",
        "FRAGMENT": "an IP fragment; it counts in its flow once its datagram is complete",
        "MALFORMED": "a header field holds nonsense (IPv4 header length < 20, ...)",
        "ENCRYPTED": "an 802.11 data frame with the Protected bit: its body is ciphertext",
    },
    "proto": {
        "tcp": "TCP (IP protocol 6)",
        "udp": "UDP (17)",
        "icmp": "ICMP (1): ports are the message type and its counterpart",
        "icmp6": "ICMPv6 (58); Zeek's conn.log calls it icmp",
        "<number>": "any other IP protocol, keyed on the addresses only (Zeek's "
                    "unknown_transport)",
    },
    "conn_state": {
        "S0": "connection attempt seen, no reply",
        "S1": "established, not terminated",
        "SF": "normal establishment and termination (UDP: both sides sent)",
        "REJ": "connection attempt rejected",
        "S2": "established, the originator closed, no reply from the responder",
        "S3": "established, the responder closed, no reply from the originator",
        "RSTO": "established, the originator aborted (sent a RST)",
        "RSTR": "the responder sent a RST",
        "RSTOS0": "the originator sent a SYN then a RST; no SYN-ACK seen",
        "RSTRH": "the responder sent a SYN-ACK then a RST; no SYN seen",
        "SH": "the originator sent a SYN then a FIN; no SYN-ACK seen",
        "SHR": "the responder sent a SYN-ACK then a FIN; no SYN seen (UDP: only the responder "
               "sent)",
        "OTH": "no SYN seen, just midstream traffic; or not TCP/UDP",
    },
    "history": {
        "S": "a SYN without ACK",
        "H": "a SYN-ACK",
        "A": "a pure ACK",
        "D": "a packet with payload",
        "F": "a FIN",
        "R": "a RST",
        "I": "a packet with both FIN and RST",
        "Q": "a packet with both SYN and FIN, or SYN and RST",
        "T": "a retransmitted packet",
        "W": "a zero window advertisement",
        "C": "a packet with a bad TCP/UDP checksum (only when checksums are verified; a bad "
             "IPv4 header checksum drops the packet from every flow, with no letter)",
        "G": "a content gap: the other side acknowledged data that was never captured "
             "(1st, 10th, 100th, ... gap; missed_bytes sums them)",
        "X": "a limit was reached: the flow changed tunnels a 6th time (tunnel_parents), or "
             "it carries a UDP tunnel found four tunnel levels deep, which is not opened",
        "^": "the roles were flipped: the first sender turned out to be the responder (by "
             "its ports, or a DNS response or NTP server message from the originator)",
    },
    "state": {
        "SYN_SENT": "TCP: only the opening SYN seen",
        "SYN_RECV": "TCP: the SYN was answered, the handshake is not complete",
        "ESTABLISHED": "TCP: open, data can flow both ways",
        "FIN_WAIT": "TCP: one side closed",
        "CLOSE_WAIT": "TCP: the responder closed first, the originator not yet",
        "LAST_ACK": "TCP: both closed, the last FIN not yet acknowledged",
        "TIME_WAIT": "TCP: both closed and acknowledged",
        "CLOSE": "TCP: reset, or closed",
        "UNREPLIED": "not TCP: only one side sent",
        "REPLIED": "not TCP: both sides sent",
        "ASSURED": "not TCP: both sides sent, and traffic went on past 2 s",
    },
    "orig_state": {
        "SYN_SENT": "actively trying to open a connection",
        "SYN_RECV": "a connection request was received and answered",
        "ESTABLISHED": "open: data can flow both ways",
        "FIN_WAIT1": "this side closed; its FIN not yet acknowledged",
        "FIN_WAIT2": "this side closed and was acknowledged; waiting for the other side",
        "CLOSE_WAIT": "the other side closed; waiting for this socket to close",
        "CLOSING": "both closed at once; this side's FIN not yet acknowledged",
        "LAST_ACK": "the other side closed, then this one; waiting for the last ACK",
        "TIME_WAIT": "closed here after the other side; waiting for stray packets",
        "CLOSE": "closed, or reset",
    },
    "end_reason": {
        "fin": "both sides closed and the close delay passed",
        "rst": "a RST ended it and the reset delay passed",
        "idle": "no packet for the inactivity timeout (an unanswered SYN: 5 s; a UDP DNS "
                "flow: 9-20 s, section 5)",
        "reuse": "a new connection started on the same socket pair (a SYN with a new ISN)",
        "active": "the active timeout cut a long flow (off by default)",
        "evicted": "the open-flow cap was reached and this was the least recently active flow",
        "eof": "the capture ended with the flow still open",
        "stopped": "a live capture was stopped with the flow still open",
        "interrupted": "reading was interrupted (Ctrl-C) with the flow still open",
        "error": "reading stopped at a corrupt record with the flow still open",
        "open": "not ended: the flow is still open (a live capture's snapshot)",
    },
    "orig_reason": {
        "syn": "it sent the bare SYN",
        "synack": "the other side sent a SYN-ACK",
        "server_port": "the other side uses a likely server port",
        "first_packet": "it sent the first packet",
    },
    "port_class": {
        "well_known": "resp_port 0-1023 (IANA system ports)",
        "registered": "resp_port 1024-49151 (IANA user ports)",
        "dynamic": "resp_port 49152-65535 (IANA dynamic or private ports)",
    },
}
VALUES["resp_state"] = VALUES["orig_state"]

# The codes the flow table writes and the meanings above are the same sets.
for _column, _names in (("conn_state", CONN_STATES), ("state", CONNTRACK_STATES),
                        ("orig_state", NETSTAT_STATES), ("end_reason", END_REASONS),
                        ("orig_reason", ORIG_REASONS), ("port_class", PORT_CLASSES),
                        ("status", tuple(s.name for s in Status))):
    assert tuple(VALUES[_column]) == _names, _column

# "tunnel_packets": read_packets(..., tunnels=True), the packets table and two columns more.
TABLES = {"flows": FLOW_COLUMNS, "packets": PACKET_COLUMNS,
          "tunnel_packets": PACKET_COLUMNS + TUNNEL_PACKET_COLUMNS}


@options_checked
def describe_columns(table: str = "flows") -> pd.DataFrame:
    """The documented columns of ``read_flows`` (``"flows"``) or ``read_packets`` (``"packets"``;
    ``"tunnel_packets"`` with ``tunnels=True``).

    Examples
    --------
    >>> describe_columns("flows").iloc[1].to_dict()
    {'name': 'first_ts', 'dtype': 'datetime64[ns, UTC]', 'meaning': "Time of the flow's first packet (Zeek's ts)."}
    """
    import pandas as pd

    if table not in TABLES:
        raise OptionError(f"table={table!r}: expected one of {', '.join(TABLES)}")
    cols = TABLES[table]
    return pd.DataFrame({"name": [c.name for c in cols], "dtype": [c.dtype for c in cols],
                         "meaning": [c.doc for c in cols]})


@options_checked
def column_values(column: str) -> pd.DataFrame:
    """Every value of a coded column with its meaning (``conn_state``, ``history``, ...).

    Examples
    --------
    >>> column_values("end_reason").head(2).to_dict("records")
    [{'value': 'fin', 'meaning': 'both sides closed and the close delay passed'}, {'value': 'rst', 'meaning': 'a RST ended it and the reset delay passed'}]
    """
    import pandas as pd

    if column not in VALUES:
        raise OptionError(f"column {column!r} has no list of values; columns that have one: "
                          f"{', '.join(sorted(VALUES))}")
    values = VALUES[column]
    return pd.DataFrame({"value": list(values), "meaning": list(values.values())})


def describe(columns: tuple[Column, ...] = PACKET_COLUMNS) -> str:
    """A column table as aligned text, for help output."""
    width = max(len(c.name) for c in columns)
    return "\n".join(f"{c.name:<{width}}  {c.dtype:<20}  {c.doc}" for c in columns)


def markdown() -> str:
    """Both column tables and every value list as Markdown (docs/flow-record.md's reference)."""
    out: list[str] = []
    for table, cols in TABLES.items():
        out += [f"### The {table} table", "", "| column | dtype | meaning |", "|---|---|---|"]
        out += [f"| `{c.name}` | {c.dtype} | {c.doc} |" for c in cols]
        out.append("")
    for column, values in VALUES.items():
        if column == "resp_state":
            continue  # the same values as orig_state
        title = "orig_state and resp_state" if column == "orig_state" else column
        out += [f"### Values of {title}", "", "| value | meaning |", "|---|---|"]
        out += [f"| `{v}` | {meaning} |" for v, meaning in values.items()]
        out.append("")
    return "\n".join(out)
