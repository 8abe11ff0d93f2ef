"""UDP tunnels: the outer UDP row stays, the packet inside follows it (tunnels.py).

Each frame is byte literals: Ethernet, an outer IPv4 header 10.0.0.1 -> 10.0.0.2, a UDP
header to the tunnel's port, the tunnel header, and the test suite's inner IPv4/TCP SYN
192.0.2.1:50000 -> 198.51.100.2:80 (decode_frames.py), so a right decapsulation ends with
the inner addresses and ports. Header layouts from RFC 7348 (VXLAN), RFC 8926 (Geneve),
3GPP TS 29.281 (GTP-U), RFC 4380 (Teredo), RFC 4891 (AYIYA), RFC 8086 (GRE over UDP);
which ports and rules Zeek applies: ZEEK-FACTS 6.
"""

from __future__ import annotations

import numpy as np
import pytest
from decode_frames import ETH_IPV4, ETH_IPV6, ICMP_ECHO, IP_TCP, V4_DST_LO, V4_SRC_LO, ipv4, ipv6
from test_tunnels import (
    MACS,
    OUTER_DST,
    OUTER_SRC,
    QOS_AMSDU_HEAD,
    SNAP_IP,
    assert_inner_syn,
    gre,
    outer4,
    subframe,
)

from tracker.decode import decode
from tracker.decode.tunnels import Decapsulator, flow_rows
from tracker.flows import FlowOptions, FlowRecords, FlowTable
from tracker.frames import LINKTYPE_ETHERNET, LINKTYPE_IEEE802_11, FrameBatch
from tracker.packets import PacketBatch, Status
from tracker.report.flows import flows_dataframe

ETH = MACS + bytes.fromhex("0800")
ETH6 = MACS + bytes.fromhex("86dd")
INNER_ETH = ETH_IPV4  # an Ethernet frame inside the tunnel, IPv4 after it
VXLAN = bytes.fromhex("08000000" "00002a00")  # I flag, VNI 42
IPV6_TCP = ipv6(20, 6) + IP_TCP[20:]  # 2001:db8::1 -> ::2, the same SYN


def udp(sport: int, dport: int, payload: bytes, src: bytes = OUTER_SRC,
        dst: bytes = OUTER_DST) -> bytes:
    """IPv4 src -> dst, UDP sport -> dport around ``payload`` (checksum 0: none)."""
    seg = sport.to_bytes(2, "big") + dport.to_bytes(2, "big") \
        + (8 + len(payload)).to_bytes(2, "big") + bytes(2) + payload
    total = 20 + len(seg)
    return (bytes([0x45, 0]) + total.to_bytes(2, "big") + bytes.fromhex("00004000")
            + bytes([64, 17]) + bytes(2) + src + dst + seg)


def run(frames: list[bytes], tunnels: Decapsulator | None = None
        ) -> tuple[PacketBatch, PacketBatch]:
    """(decoded outer rows, rows for the flow table) of Ethernet frames."""
    fb = FrameBatch.from_frames(frames, linktype=LINKTYPE_ETHERNET)
    pb = decode(fb)
    return pb, flow_rows(fb, pb, tunnels)


def test_vxlan_keeps_the_outer_row_and_adds_the_inner_one() -> None:
    outer, rows = run([ETH + udp(40000, 4789, VXLAN + INNER_ETH + IP_TCP)])
    assert len(outer) == 1 and len(rows) == 2
    assert (rows.proto[0], rows.dst_port[0], rows.depth[0]) == (17, 4789, 0)
    assert_inner_syn(rows, 1)
    assert (rows.depth[1], rows.carrier_depth[1], rows.record[1]) == (1, 0, 0)
    assert rows.ip_tunnel[1] == 0 and rows.encap[1] != 0


def test_vxlan_without_its_i_flag_is_a_violation_that_stops_the_connection() -> None:
    bad = ETH + udp(40000, 4789, bytes(8) + INNER_ETH + IP_TCP)
    good = ETH + udp(40000, 4789, VXLAN + INNER_ETH + IP_TCP)
    other = ETH + udp(40001, 4789, VXLAN + INNER_ETH + IP_TCP)  # another outer connection
    _, rows = run([good, bad, good, other])
    # good -> opened; bad -> violation; good again -> not opened (VXLAN.cc L20-21); other -> opened
    assert rows.record.tolist() == [0, 0, 1, 2, 3, 3]
    tunnels = Decapsulator()  # the violation is remembered across batches
    run([bad], tunnels)
    _, later = run([good], tunnels)
    assert len(later) == 1


def test_geneve_skips_its_options_and_follows_the_protocol_type() -> None:
    option = bytes.fromhex("0102" "03" "00")  # class 0x0102, type 3, length 0 words
    eth = bytes([0x01, 0x00]) + bytes.fromhex("6558") + bytes.fromhex("00002a00") + option
    ip = bytes([0x00, 0x00]) + bytes.fromhex("0800") + bytes.fromhex("00002a00")
    arp = bytes([0x00, 0x00]) + bytes.fromhex("0806") + bytes.fromhex("00002a00")
    v1 = bytes([0x40, 0x00]) + bytes.fromhex("0800") + bytes.fromhex("00002a00")
    _, rows = run([ETH + udp(40000, 6081, eth + INNER_ETH + IP_TCP),
                   ETH + udp(40000, 6081, ip + IP_TCP),
                   ETH + udp(40000, 6081, arp + bytes(28)),
                   ETH + udp(40000, 6081, v1 + IP_TCP)])
    assert rows.record.tolist() == [0, 0, 1, 1, 2, 3]  # ARP and version 1: nothing inside
    assert_inner_syn(rows, 1)
    assert_inner_syn(rows, 3)


def gtp(payload: bytes, flags: int = 0x30, mtype: int = 0xFF, extra: bytes = b"") -> bytes:
    """A GTPv1 header: version 1 with PT (0x30), message type, length, TEID 7."""
    length = len(extra) + len(payload)
    return bytes([flags, mtype]) + length.to_bytes(2, "big") + bytes.fromhex("00000007") \
        + extra + payload


def test_gtp_carries_exactly_one_ip_packet_in_a_g_pdu() -> None:
    ext = bytes.fromhex("0000" "00" "85") + bytes.fromhex("01" "0900" "00")  # PDU session
    _, rows = run([ETH + udp(2152, 2152, gtp(IP_TCP)),
                   ETH + udp(2152, 2152, gtp(IP_TCP, 0x32, extra=bytes(4))),  # S: + 4 bytes
                   ETH + udp(2152, 2152, gtp(IP_TCP, 0x34, extra=ext)),  # E: one extension
                   ETH + udp(2152, 2152, gtp(IPV6_TCP)),
                   ETH + udp(2152, 2152, gtp(IP_TCP + bytes(2))),  # longer than the packet
                   ETH + udp(2152, 2152, gtp(IP_TCP, mtype=1)),  # echo request: nothing
                   ETH + udp(2152, 2152, gtp(IP_TCP, 0x50))])  # version 2
    assert rows.record.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6]
    for i in (1, 3, 5):
        assert_inner_syn(rows, i)
    assert (rows.ip_version[7], rows.dst_port[7]) == (6, 80)


def test_gtp_is_chosen_by_the_responder_port_only() -> None:
    # 2152 -> 53: both likely server ports, the first packet's destination is the
    # responder, so this is DNS, not GTP (Zeek's core.tunnels.gtp.false_gtp).
    zeek = Decapsulator(FlowOptions().likely_server_udp)  # 53 and 2152 among them
    _, rows = run([ETH + udp(2152, 53, gtp(IP_TCP)), ETH + udp(53, 2152, gtp(IP_TCP), OUTER_DST, OUTER_SRC)],
                  zeek)
    assert len(rows) == 2
    # Only one side on a tunnel port: that side is the responder, whichever sent first.
    _, rows = run([ETH + udp(2152, 40000, gtp(IP_TCP))])
    assert len(rows) == 2


def test_gtp_inside_gtp_is_plain_udp() -> None:
    """A G-PDU carrying UDP 2152 -> 2152 with a G-PDU in it: Zeek never opens GTP inside
    GTP (a violation, "GTP-in-GTP", gtpv1-analyzer.pac L660-665; btest
    core.tunnels.gtp.non_recursive): the inner UDP packet is a row, nothing inside it.
    A G-PDU inside VXLAN inside GTP is opened (the immediate carrier is VXLAN)."""
    inner = udp(2152, 2152, gtp(IP_TCP), src=bytes([10, 1, 0, 1]), dst=bytes([10, 1, 0, 2]))
    _, rows = run([ETH + udp(2152, 2152, gtp(inner))])
    assert rows.depth.tolist() == [0, 1] and rows.proto.tolist() == [17, 17]
    vxlan = udp(40000, 4789, VXLAN + INNER_ETH + inner, src=bytes([10, 3, 0, 1]),
                dst=bytes([10, 3, 0, 2]))
    _, rows = run([ETH + udp(2152, 2152, gtp(vxlan))])
    assert rows.depth.tolist() == [0, 1, 2, 3] and rows.proto.tolist() == [17, 17, 17, 6]


TEREDO_V6 = ipv6(20, 6)[:8] + bytes.fromhex("20010000" "00000000" "00000000" "00000001") \
    + ipv6(20, 6)[24:] + IP_TCP[20:]  # source 2001:0:: (a Teredo address)


def test_teredo_with_and_without_its_optional_headers() -> None:
    origin = bytes.fromhex("0000" "1234" "c0000201")  # origin indication: port, address
    auth = bytes.fromhex("0001" "00" "00") + bytes(8) + bytes(1)  # no id, no value
    bubble = ipv6(0, 59)
    _, rows = run([ETH + udp(40000, 3544, IPV6_TCP),
                   ETH + udp(40000, 3544, origin + IPV6_TCP),
                   ETH + udp(40000, 3544, auth + origin + IPV6_TCP),
                   ETH + udp(40000, 3544, bubble + b"trailing"),  # a bubble may have more
                   ETH + udp(40001, 3544, IPV6_TCP + bytes(1))])  # others may not
    assert rows.record.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4]
    assert [int(rows.ip_version[i]) for i in (1, 3, 5, 7)] == [6, 6, 6, 6]
    assert rows.proto[7] == 59  # the bubble: a row, but no flow (the table skips it)


def test_teredo_and_ayiya_are_found_by_their_payload_on_other_ports() -> None:
    ayiya = bytes([0x41, 0x52, 0x11, 41]) + bytes(4) + bytes(16) + bytes(20)  # Zeek's probe
    _, rows = run([ETH + udp(40000, 40001, TEREDO_V6),  # a Teredo address: detected
                   ETH + udp(40000, 40001, IPV6_TCP),  # an ordinary IPv6 address: not
                   ETH + udp(40002, 40003, ayiya + IPV6_TCP)])
    assert rows.record.tolist() == [0, 0, 1, 2, 2]
    assert rows.dst_port[1] == 80 and rows.dst_port[4] == 80


def test_ayiya_forward_carries_ipv4_or_ipv6() -> None:
    head = bytes([0x00, 0x10, 0x01])  # 1-byte identity, 4-byte signature, forward
    _, rows = run([ETH + udp(40000, 5072, head + bytes([4]) + bytes(4 + 1 + 4) + IP_TCP),
                   ETH + udp(40000, 5072, head + bytes([41]) + bytes(9) + IPV6_TCP),
                   ETH + udp(40000, 5072, bytes([0, 0x10, 0x02, 4]) + bytes(9) + IP_TCP),
                   ETH + udp(40000, 5072, head + bytes([17]) + bytes(9) + IP_TCP)])
    assert rows.record.tolist() == [0, 0, 1, 1, 2, 3]  # not a forward; next header 17
    assert_inner_syn(rows, 1)
    assert rows.ip_version[3] == 6


def test_gre_over_udp_has_an_ip_tunnel_as_parent() -> None:
    _, rows = run([ETH + udp(40000, 4754, gre(0x0800) + IP_TCP)])
    assert len(rows) == 2
    assert_inner_syn(rows, 1)
    assert rows.carrier_depth[1] == -1 and rows.ip_tunnel[1] != 0


def test_a_cut_inside_each_tunnel_header_gives_no_inner_row() -> None:
    payloads = {4789: VXLAN, 6081: bytes([0, 0]) + bytes.fromhex("0800") + bytes(4),
                2152: gtp(IP_TCP)[:8], 5072: bytes([0x00, 0x10, 0x01, 4]) + bytes(9),
                4754: gre(0x0800, 0x2000, bytes(4))}
    frames = []
    for port, head in payloads.items():
        full = ETH + udp(40000, port, head + IP_TCP)
        frames.append(full[:len(ETH) + 28 + len(head) - 2])  # the header's last 2 bytes cut
    outer, rows = run(frames)
    assert len(rows) == len(outer) == len(frames)
    assert (rows.proto == 17).all()  # the outer rows are there, still UDP


def test_a_tunnel_inside_a_tunnel() -> None:
    vxlan = udp(40000, 4789, VXLAN + INNER_ETH + IP_TCP, src=bytes([10, 1, 0, 1]),
                dst=bytes([10, 1, 0, 2]))
    geneve_ip = bytes([0, 0]) + bytes.fromhex("0800") + bytes(4)
    _, rows = run([ETH + udp(40000, 6081, geneve_ip + vxlan)])
    assert rows.depth.tolist() == [0, 1, 2]
    assert rows.carrier_depth.tolist() == [-1, 0, 1]
    assert rows.dst_port.tolist() == [6081, 4789, 80]
    assert len(set(rows.encap.tolist())) == 3  # each level its own stack


def test_four_levels_are_opened_and_not_a_fifth() -> None:
    _, rows = run([nested(4789, VXLAN)])
    assert rows.depth.tolist() == [0, 1, 2, 3, 4]
    assert rows.proto.tolist() == [17] * 5  # the TCP packet at depth 5 is never reached
    # VXLAN.cc L23-27: the fifth VXLAN's analyzer stops at the depth check, marking its
    # carrying connection (the row at depth 4), and only that one
    assert rows.tunnel_refused.tolist() == [False] * 4 + [True]


def nested(port: int, head: bytes, levels: int = 5, inner: bytes = IP_TCP) -> bytes:
    """``levels`` nested UDP tunnels to ``port`` (each ``head``, then Ethernet and IPv4),
    the innermost around ``inner`` (the TCP SYN); the tunnel L levels out from the
    innermost (depth levels - 1 - L) runs 10.2.0.L:4000L -> 10.3.0.L."""
    for level in range(levels):
        inner = udp(40000 + level, port, head + INNER_ETH + inner,
                    src=bytes([10, 2, 0, level]), dst=bytes([10, 3, 0, level]))
    return ETH + inner


def test_the_refused_fifth_level_marks_its_carrying_flow_with_x() -> None:
    """ZEEK-FACTS 6.8 (Zeek's core.tunnels.max-depth-exceeded: the VXLAN row at the depth
    limit is "DX" and nothing inside it is a flow): one packet through five VXLAN levels
    makes five UDP flows, each "D" (orig payload), the fifth "DX"; no TCP flow."""
    ended, _ = flows([nested(4789, VXLAN)])
    df = flows_dataframe(ended).sort_values("orig_port", ascending=False)  # by depth
    assert df["proto"].tolist() == ["udp"] * 5
    assert df["history"].tolist() == ["D"] * 4 + ["DX"]


def test_gtp_at_the_depth_limit_adds_no_x() -> None:
    """GTP's depth check raises a weird alone (gtpv1-analyzer.pac L654-658, ZEEK-FACTS
    6.8): VXLAN four deep, then GTP-U at depth 4, which is not opened and not marked."""
    gtp = bytes.fromhex("30ff") + (len(IP_TCP)).to_bytes(2, "big") + bytes(4)
    inner = udp(40009, 2152, gtp + IP_TCP, src=bytes([10, 2, 0, 9]), dst=bytes([10, 3, 0, 9]))
    _, rows = run([nested(4789, VXLAN, 4, inner)])
    assert rows.depth.tolist() == [0, 1, 2, 3, 4] and rows.dst_port[-1] == 2152
    assert not rows.tunnel_refused.any()


def flows(frames: list[bytes]) -> tuple[FlowRecords, FlowTable]:
    table = FlowTable(FlowOptions(verify_checksums=False))
    fb = FrameBatch.from_frames(frames, ts_ns=np.arange(len(frames)) * 1_000_000,
                                linktype=LINKTYPE_ETHERNET)
    ended = table.update(decode(fb), fb)
    return FlowRecords.concat([ended, table.flush()]), table


A, B = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
PING = ipv4(28, 1)[:8] + bytes([64, 1]) + ipv4(28, 1)[10:] + ICMP_ECHO[:8]
PONG = bytes(PING[:12]) + PING[16:20] + PING[12:16] + bytes([0, 0]) + PING[22:]


def test_tunnel_parents_and_the_sixth_change() -> None:
    """Echo requests in one outer VXLAN flow, replies in another: each direction switch
    changes the inner flow's tunnel (ZEEK-FACTS 6.4); 4 + 4 packets are 7 changes."""
    there = ETH + udp(1000, 4789, VXLAN + INNER_ETH + PING, A, B)
    back = ETH + udp(2000, 4789, VXLAN + INNER_ETH + PONG, B, A)
    records, table = flows([there, back] * 4)
    df = flows_dataframe(records).set_index("flow_id")
    outer = df[df["proto"] == "udp"]
    icmp = df[df["proto"] == "icmp"].iloc[0]
    assert sorted(icmp["tunnel_parents"]) == sorted(outer.index)
    assert icmp["history"] == "X" and (icmp["orig_pkts"], icmp["resp_pkts"]) == (4, 4)
    assert (outer["orig_pkts"] == 4).all()
    assert table.flow_ids.tolist() == table.row_flow_ids[::2].tolist()  # frames: outer flows
    records, _ = flows([there, back] * 3)  # 5 changes: no X
    icmp = flows_dataframe(records).query("proto == 'icmp'").iloc[0]
    assert icmp["history"] != "X" and len(icmp["tunnel_parents"]) == 2


def test_changes_to_and_from_no_tunnel_count_too() -> None:
    """Conn.cc CheckEncapsulation: a packet without a tunnel after one with (and back) is
    a change as well (Zeek's core.tunnels.count-default-tunnel-changes: 'DX'); it adds
    no parent. Bare, tunnelled, ... : 6 packets are 5 changes, 7 are 6: 'X'."""
    bare = ETH + IP_TCP
    tunnelled = ETH + udp(40000, 4789, VXLAN + INNER_ETH + IP_TCP)
    for frames, history in (([bare, tunnelled] * 3, ""), ([bare, tunnelled] * 3 + [bare], "X")):
        records, _ = flows(frames)
        df = flows_dataframe(records)
        tcp = df[df["proto"] == "tcp"].iloc[0]
        outer = df.loc[df["proto"] == "udp", "flow_id"].tolist()
        assert tcp["history"].endswith(history) and ("X" in tcp["history"]) == bool(history)
        assert list(tcp["tunnel_parents"]) == outer


def _fragments(datagram: bytes, cut: int, ident: int = 0x1234) -> list[bytes]:
    """The IPv4 ``datagram`` (20-byte header) as two fragments, the first with ``cut``
    data bytes (a multiple of 8), MF set; header checksums computed (RFC 791)."""
    def header(length: int, flags_offset: int) -> bytes:
        h = bytearray(datagram[:20])
        h[2:4] = (20 + length).to_bytes(2, "big")
        h[4:6] = ident.to_bytes(2, "big")
        h[6:8] = flags_offset.to_bytes(2, "big")
        h[10:12] = bytes(2)
        total = sum(int.from_bytes(h[i:i + 2], "big") for i in range(0, 20, 2))
        total = (total & 0xFFFF) + (total >> 16)
        h[10:12] = (~total & 0xFFFF).to_bytes(2, "big")
        return bytes(h)
    data = datagram[20:]
    return [header(cut, 0x2000) + data[:cut], header(len(data) - cut, cut // 8) + data[cut:]]


def test_a_tunnel_in_outer_fragments_is_opened_at_the_completing_fragment() -> None:
    """Zeek reassembles, then decapsulates (ZEEK-FACTS 4.2, 6.2): the VXLAN packet inside
    a datagram in two fragments, the second arriving first and in an earlier batch, is
    one inner packet at the first fragment's time, carried by the outer UDP flow's one
    packet; a table pickled between the two batches (a cluster's carried state) gives
    the same flows."""
    import pickle

    first, second = _fragments(udp(40000, 4789, VXLAN + INNER_ETH + IP_TCP), 24)
    for carried in (False, True):
        table = FlowTable(FlowOptions())
        ended = []
        for k, frame in ((0, second), (1, first)):
            fb = FrameBatch.from_frames([ETH + frame], ts_ns=[k * 10**9], first_record=k)
            ended.append(table.update(decode(fb), fb))
            if carried:
                table = pickle.loads(pickle.dumps(table))
        df = flows_dataframe(FlowRecords.concat([*ended, table.flush()])).set_index("proto")
        assert (df.loc["udp", "orig_pkts"], df.loc["udp", "orig_ip_bytes"]) == \
            (1, 20 + 8 + len(VXLAN + INNER_ETH + IP_TCP))
        tcp = df.loc["tcp"]
        assert (tcp["orig_pkts"], tcp["orig_port"], tcp["history"]) == (1, 50000, "S")
        assert tcp["first_ts"].value == 10**9
        assert list(tcp["tunnel_parents"]) == [df.loc["udp", "flow_id"]]


def test_the_read_pipeline_keeps_the_frames_of_fragments_for_the_tunnels() -> None:
    """FlowRun (the CLI's and read_flows' path) keeps a batch's frames only where a tunnel
    may be: a batch holding nothing but the fragments of a VXLAN datagram has no tunnel
    hint, yet must keep them (pipeline.made_ready)."""
    from tracker.pipeline import FlowRun
    from tracker.sources.memory import MemorySource

    first, second = _fragments(udp(40000, 4789, VXLAN + INNER_ETH + IP_TCP), 24)
    batches = [FrameBatch.from_frames([ETH + f], ts_ns=[k], first_record=k)
               for k, f in enumerate((first, second))]
    records = FlowRecords.concat(list(FlowRun(MemorySource(batches), FlowOptions()).finished()))
    assert sorted(flows_dataframe(records)["proto"].astype(str)) == ["tcp", "udp"]


def test_an_incomplete_outer_datagram_opens_nothing() -> None:
    first, _ = _fragments(udp(40000, 4789, VXLAN + INNER_ETH + IP_TCP), 24)
    _, rows = run([ETH + first])
    assert len(rows) == 1 and rows.depth.tolist() == [0]


@pytest.mark.parametrize("proto", [4, 47])
def test_an_ip_tunnel_in_outer_fragments_takes_the_completing_fragments_row(proto: int
                                                                           ) -> None:
    """An IP-in-IP or GRE datagram in two fragments: Zeek reassembles, then the packet
    inside takes the outer one's place (ZEEK-FACTS 4.2, 6.2): one TCP flow of one packet
    at the completing fragment's time, the IP tunnel its parent, and no flow of protocol
    4 or 47, neither of the datagram nor of its fragments; an incomplete datagram makes
    no flow at all."""
    inside = IP_TCP if proto == 4 else gre(0x0800) + IP_TCP
    first, second = _fragments(outer4(inside, proto), 24)
    records, table = flows([ETH + first, ETH + second])
    df = flows_dataframe(records)
    assert df["proto"].astype(str).tolist() == ["tcp"]
    tcp = df.iloc[0]
    assert (tcp["orig_pkts"], tcp["orig_ip_bytes"], tcp["history"]) == (1, 40, "S")
    assert tcp["first_ts"].value == 1_000_000 and len(tcp["tunnel_parents"]) == 1
    assert table.flow_ids.tolist() == [-1, tcp["flow_id"]]
    records, _ = flows([ETH + first])
    assert len(records) == 0


def test_an_outer_datagram_too_long_for_its_length_field_wraps_as_zeek_reads_it() -> None:
    """A VXLAN datagram whose fragments reach 65,536 bytes past what its packet holds:
    Zeek writes the wrapped total length into the datagram it puts back together and
    reads it to that length (Frag.cc, IP.cc), so the outer UDP flow is one packet of 28 +
    the tunnel's bytes and the TCP packet inside is a flow of its own. Longer by exactly
    the UDP segment, the datagram wraps to its bare IP header: Zeek drops it, no flow."""
    tunnel = VXLAN + INNER_ETH + IP_TCP
    gram = udp(40000, 4789, tunnel) + bytes(65536)
    df = flows_dataframe(flows([ETH + f for f in _fragments(gram, 32768)])[0]).set_index("proto")
    assert sorted(df.index.astype(str)) == ["tcp", "udp"]
    assert (df.loc["udp", "orig_pkts"], df.loc["udp", "orig_ip_bytes"]) == (1, 28 + len(tunnel))
    assert list(df.loc["tcp", "tunnel_parents"]) == [df.loc["udp", "flow_id"]]
    gram = udp(40000, 4789, tunnel) + bytes(65536 - 8 - len(tunnel))
    assert len(flows([ETH + f for f in _fragments(gram, 32768)])[0]) == 0


def _fragments6(next_header: int, payload: bytes, cut: int, before: bytes = b"",
                first: int = 44) -> list[bytes]:
    """``payload`` after an IPv6 header as two fragments (Fragment header, id 0x1234),
    the first with ``cut`` bytes (a multiple of 8), M set; ``before``: extension
    headers between the fixed header (Next Header ``first``) and the Fragment header."""
    def fragment(data: bytes, offset: int, more: int) -> bytes:
        frag = bytes([next_header, 0]) + (offset | more).to_bytes(2, "big") \
            + (0x1234).to_bytes(4, "big")
        return ipv6(len(before) + 8 + len(data), first) + before + frag + data
    return [fragment(payload[:cut], 0, 1), fragment(payload[cut:], cut, 0)]


def test_tunnels_in_ipv6_fragments_are_opened_too() -> None:
    """The same for an IPv6 outer datagram (its Fragment header right after the fixed
    header): VXLAN over UDP, the outer UDP flow one packet at the completing fragment,
    the TCP packet inside a flow of its own; IPv4 in IPv6 (protocol 4): the TCP packet
    only."""
    seg = udp(40000, 4789, VXLAN + INNER_ETH + IP_TCP)[20:]  # the UDP header and payload
    records, _ = flows([ETH6 + f for f in _fragments6(17, seg, 32)])
    df = flows_dataframe(records).set_index("proto")
    assert sorted(df.index.astype(str)) == ["tcp", "udp"]
    # The datagram put back together has no Fragment header (Zeek's Frag.cc): 40 + UDP.
    assert (df.loc["udp", "orig_pkts"], df.loc["udp", "orig_ip_bytes"]) == (1, 40 + len(seg))
    assert (df.loc["tcp", "orig_pkts"], df.loc["tcp", "first_ts"].value) == (1, 1_000_000)
    assert list(df.loc["tcp", "tunnel_parents"]) == [df.loc["udp", "flow_id"]]
    records, _ = flows([ETH6 + f for f in _fragments6(4, IP_TCP, 24)])
    df = flows_dataframe(records)
    assert df["proto"].astype(str).tolist() == ["tcp"] and df["orig_ip_bytes"].tolist() == [40]


# Extension headers before the Fragment header, 8 bytes each (PadN options): hop-by-hop
# naming the Fragment header; hop-by-hop, then destination options naming it.
HOP_TO_FRAGMENT = bytes([44, 0, 1, 4, 0, 0, 0, 0])
HOP_DEST_TO_FRAGMENT = bytes([60, 0, 1, 4, 0, 0, 0, 0]) + bytes([44, 0, 1, 4, 0, 0, 0, 0])


@pytest.mark.parametrize("before", [HOP_TO_FRAGMENT, HOP_DEST_TO_FRAGMENT],
                         ids=["hop-by-hop", "hop-by-hop and destination options"])
def test_tunnels_in_ipv6_fragments_behind_other_extension_headers(before: bytes) -> None:
    """RFC 8200 section 4.5: the unfragmentable part (the fixed header and the extension
    headers before the Fragment header) is in every fragment; the datagram put back
    together is that part, then the data, the Fragment header gone (Zeek's Frag.cc).
    VXLAN inside: the outer UDP flow is one packet of 40 + the headers + the UDP
    segment, and the TCP packet inside is a flow of its own, the UDP flow its parent;
    IPv4 in IPv6: the TCP packet only."""
    seg = udp(40000, 4789, VXLAN + INNER_ETH + IP_TCP)[20:]
    records, _ = flows([ETH6 + f for f in _fragments6(17, seg, 32, before, first=0)])
    df = flows_dataframe(records).set_index("proto")
    assert sorted(df.index.astype(str)) == ["tcp", "udp"]
    assert (df.loc["udp", "orig_pkts"], df.loc["udp", "orig_ip_bytes"]) == \
        (1, 40 + len(before) + len(seg))
    assert (df.loc["tcp", "orig_pkts"], df.loc["tcp", "first_ts"].value) == (1, 1_000_000)
    assert list(df.loc["tcp", "tunnel_parents"]) == [df.loc["udp", "flow_id"]]
    records, _ = flows([ETH6 + f for f in _fragments6(4, IP_TCP, 24, before, first=0)])
    df = flows_dataframe(records)
    assert df["proto"].astype(str).tolist() == ["tcp"] and df["orig_ip_bytes"].tolist() == [40]


def test_tunnels_in_ipv6_fragments_with_options_after_the_fragment_header() -> None:
    """A Destination Options header (8 bytes, PadN) after the Fragment header is part of
    the fragmentable data (RFC 8200 section 4.5): the second fragment names it (60), not
    UDP or IPv4. Put back together, the datagram is 40 + 8 + the tunnel's bytes: VXLAN
    inside, the outer UDP flow of one packet of that size and the TCP flow inside, its
    parent the UDP flow; IPv4 inside, the TCP packet only. Either fragment first."""
    seg = udp(40000, 4789, VXLAN + INNER_ETH + IP_TCP)[20:]
    for order in (slice(None), slice(None, None, -1)):
        frames = _fragments6(60, bytes([17, 0, 1, 4, 0, 0, 0, 0]) + seg, 32)[order]
        df = flows_dataframe(flows([ETH6 + f for f in frames])[0]).set_index("proto")
        assert sorted(df.index.astype(str)) == ["tcp", "udp"]
        assert (df.loc["udp", "orig_pkts"], df.loc["udp", "orig_ip_bytes"]) == \
            (1, 40 + 8 + len(seg))
        assert df.loc["tcp", "orig_pkts"] == 1
        assert list(df.loc["tcp", "tunnel_parents"]) == [df.loc["udp", "flow_id"]]
        frames = _fragments6(60, bytes([4, 0, 1, 4, 0, 0, 0, 0]) + IP_TCP, 24)[order]
        df = flows_dataframe(flows([ETH6 + f for f in frames])[0])
        assert df["proto"].astype(str).tolist() == ["tcp"]
        assert df["orig_ip_bytes"].tolist() == [40]


def test_zeeks_oversized_ipv6_datagram_makes_no_flow() -> None:
    """Zeek's trace ipv6-reassembly-state-leak: 65,528 bytes of UDP data behind a
    Hop-by-Hop header, in fragments; put back together the payload length is 8 + 65,528
    = 65,536, which wraps to 0, so Zeek drops it (weird invalid_IP_header_size) and makes
    no connection. It raised OverflowError here before."""
    frames = _fragments6(17, bytes(65528), 32768, HOP_TO_FRAGMENT, first=0)
    assert len(flows([ETH6 + f for f in frames])[0]) == 0


def test_each_packet_of_an_amsdu_carries_its_own_tunnel() -> None:
    """Two VXLAN packets in one 802.11 A-MSDU, from two outer UDP flows, each with a
    TCP SYN of its own (ports 80 and 443) inside: each inner flow's parent is the outer
    flow of its own subframe, though both subframes are rows of one frame at depth 0
    (the carrier is the row before at that depth, not the frame's first)."""
    syn443 = IP_TCP[:22] + (443).to_bytes(2, "big") + IP_TCP[24:]
    first = udp(40000, 4789, VXLAN + INNER_ETH + IP_TCP)
    second = udp(40001, 4789, VXLAN + INNER_ETH + syn443, src=bytes([10, 0, 0, 3]),
                 dst=bytes([10, 0, 0, 4]))
    frame = QOS_AMSDU_HEAD + subframe(SNAP_IP, first) + subframe(SNAP_IP, second, last=True)
    table = FlowTable(FlowOptions(verify_checksums=False))
    fb = FrameBatch.from_frames([frame], linktype=LINKTYPE_IEEE802_11)
    df = flows_dataframe(FlowRecords.concat([table.update(decode(fb), fb), table.flush()]))
    outer = df[df["proto"] == "udp"].set_index("orig_port")["flow_id"]
    tcp = df[df["proto"] == "tcp"].set_index("resp_port")["tunnel_parents"]
    assert sorted(outer.index) == [40000, 40001] and sorted(tcp.index) == [80, 443]
    assert list(tcp[80]) == [outer[40000]] and list(tcp[443]) == [outer[40001]]


def test_row_flow_ids_with_an_amsdu_and_fragments_in_one_batch() -> None:
    """An A-MSDU of two SYNs (ports 80 and 443), then a UDP datagram in two fragments, in
    one batch of an 802.11 capture: each row gets its own flow (the fragments their
    datagram's), though the frame's two rows share a record and a depth."""
    syn443 = IP_TCP[:22] + (443).to_bytes(2, "big") + IP_TCP[24:]
    amsdu = QOS_AMSDU_HEAD + subframe(SNAP_IP, IP_TCP) + subframe(SNAP_IP, syn443, last=True)
    head = bytes([0x88, 0x02]) + bytes(22) + bytes(2) + SNAP_IP  # QoS data, no A-MSDU
    pieces = _fragments(udp(40000, 9999, bytes(40)), 24)
    table = FlowTable(FlowOptions(verify_checksums=False))
    fb = FrameBatch.from_frames([amsdu] + [head + p for p in pieces],
                                linktype=LINKTYPE_IEEE802_11)
    records = FlowRecords.concat([table.update(decode(fb), fb), table.flush()])
    by_port = dict(zip(records.resp_port.tolist(), records.flow_id.tolist(), strict=True))
    assert table.row_flow_ids.tolist() == [by_port[80], by_port[443], by_port[9999],
                                           by_port[9999]]


def test_inner_rows_feed_the_same_flow_as_bare_packets() -> None:
    bare = ETH + IP_TCP
    tunnelled = ETH + udp(40000, 4789, VXLAN + INNER_ETH + IP_TCP)
    records, _ = flows([bare, tunnelled])
    df = flows_dataframe(records)
    tcp = df[df["proto"] == "tcp"]
    assert len(tcp) == 1 and tcp["orig_pkts"].iloc[0] == 2  # one 5-tuple, one flow
    assert (tcp["orig_addr"].astype(str).iloc[0], V4_SRC_LO, V4_DST_LO) == \
        ("192.0.2.1", V4_SRC_LO, V4_DST_LO)


def test_without_decapsulation_only_the_outer_flow() -> None:
    table = FlowTable(FlowOptions(decapsulate=False))
    fb = FrameBatch.from_frames([ETH + udp(40000, 4789, VXLAN + INNER_ETH + IP_TCP)])
    pb = decode(fb)
    records = FlowRecords.concat([table.update(pb, fb), table.flush()])
    assert records.proto.tolist() == [17] and table.rows is pb
    assert pb.status[0] == Status.OK


def test_the_netstat_view_shows_the_tunnel() -> None:
    from tracker.report.netstat import netstat_view

    records, _ = flows([ETH + udp(40000, 4789, VXLAN + INNER_ETH + IP_TCP),
                        ETH + udp(40000, 4754, gre(0x0800) + IP_TCP[:-20] + IP_TCP[-20:])])
    view = netstat_view(flows_dataframe(records), numeric=True)
    tcp = view[view["Proto"] == "tcp"].iloc[0]
    assert tcp["Local Address"] == "192.0.2.1:50000"
    # The first packet came through VXLAN between 10.0.0.1 and 10.0.0.2, the second
    # through GRE over UDP (an IP tunnel, no flow of its own): two parents.
    assert tcp["Tunnel"] == "vxlan 10.0.0.1-10.0.0.2 +1"
    assert set(view.loc[view["Proto"] == "udp", "Tunnel"]) == {""}


def test_the_tunnel_summary() -> None:
    from tracker.report.summarize import by_tunnel

    records, _ = flows([ETH + udp(40000, 4789, VXLAN + INNER_ETH + IP_TCP),
                        ETH + udp(40001, 4789, VXLAN + ETH_IPV6 + IPV6_TCP),
                        ETH + udp(40000, 53, bytes(12))])
    summary = by_tunnel(flows_dataframe(records))
    # Two inner TCP flows (IPv4 and IPv6) in VXLAN between 10.0.0.1 and 10.0.0.2; the
    # outer flows and the DNS packet are not tunnelled.
    assert summary.to_dict("records") == [{"tunnel": "vxlan 10.0.0.1-10.0.0.2", "flows": 2,
                                           "packets": 2, "bytes": 40 + 60,
                                           "payload_bytes": 0, "hosts": 4}]
