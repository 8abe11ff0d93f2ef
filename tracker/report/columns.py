"""The packets table: every column of ``read_packets``, documented once.

Each entry says what the column measures, where the number comes from and
when it is missing (``<NA>``). The flows table is documented the same way in
``tracker/report/flow_columns.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    dtype: str  # the pandas dtype of the DataFrame column
    doc: str


PACKET_COLUMNS: tuple[Column, ...] = (
    Column("frame", "int64", "1-based record number in the capture (tshark's frame.number)."),
    Column("ts", "datetime64[ns, UTC]", "Capture timestamp, full file precision; NaT when the "
           "file's timestamp does not fit int64 nanoseconds (after 2262)."),
    Column("wire_len", "int64", "Frame length on the wire (pcap orig_len)."),
    Column("caplen", "int64", "Bytes captured of the frame (at most the snaplen)."),
    Column("status", "category", "OK, or why the row is not a normal packet: TRUNCATED (a header "
           "cut by the snaplen), NOT_IP, UNSUPPORTED_LINK, FRAGMENT (an IP fragment), MALFORMED."),
    Column("vlan", "Int32", "Outermost 802.1Q/802.1ad VLAN id; <NA> when untagged."),
    Column("ip_version", "UInt8", "4 or 6; <NA> when the frame carries no IP header."),
    Column("proto", "Int16", "IP protocol number of the transport header (6 TCP, 17 UDP, 1 ICMP, "
           "58 ICMPv6, ...), after IPv6 extension headers."),
    Column("src_addr", "category", "Source IP address as Python's ipaddress prints it."),
    Column("dst_addr", "category", "Destination IP address as Python's ipaddress prints it."),
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
           "options); every fragment of a reassembled datagram gets its flow's id; <NA> when the "
           "packet is in no flow (not IP, malformed, bad checksum when verified, an IP datagram "
           "that never completed)."),
)


def describe(columns: tuple[Column, ...] = PACKET_COLUMNS) -> str:
    """The column table as text, for help output and docs."""
    width = max(len(c.name) for c in columns)
    return "\n".join(f"{c.name:<{width}}  {c.dtype:<20}  {c.doc}" for c in columns)
