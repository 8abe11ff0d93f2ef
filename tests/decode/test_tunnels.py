"""IP-in-IP and GRE: the flow table gets the packet inside (tracker/decode/tunnels.py).

Each frame is byte literals: an outer IPv4 header 10.0.0.1 -> 10.0.0.2 (or IPv6) around
the test suite's inner IPv4/TCP SYN 192.0.2.1:50000 -> 198.51.100.2:80 (decode_frames.py),
so a right decapsulation ends with the inner addresses and ports. Expected values come
from the header layouts (RFC 2003, 2473, 2784, 2890, 2637; ERSPAN as Zeek's GRE.cc reads
it: ZEEK-FACTS 6.6).
"""

from __future__ import annotations

import pytest
from decode_frames import ETH_IPV4, ETH_IPV6, IP_TCP, V4_DST_LO, V4_SRC_LO, eth_ipv4_tcp, ipv6

from tracker.decode import decode
from tracker.decode.tunnels import flow_rows
from tracker.frames import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IEEE802_11,
    LINKTYPE_IEEE802_11_RADIOTAP,
    FrameBatch,
)
from tracker.packets import PacketBatch, Status

OUTER_SRC, OUTER_DST = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
OUTER_DST_LO = 0x0000FFFF_0A000002


def outer4(payload: bytes, proto: int) -> bytes:
    """An IPv4 header 10.0.0.1 -> 10.0.0.2 of ``proto`` around ``payload``."""
    total = 20 + len(payload)
    return (bytes([0x45, 0]) + total.to_bytes(2, "big") + bytes.fromhex("00004000")
            + bytes([64, proto]) + bytes(2) + OUTER_SRC + OUTER_DST + payload)


def gre(ptype: int, flags: int = 0, extra: bytes = b"") -> bytes:
    """A GRE header: flags and version, protocol type, then the optional words."""
    return flags.to_bytes(2, "big") + ptype.to_bytes(2, "big") + extra


def run(frames: list[bytes]) -> tuple[PacketBatch, PacketBatch]:
    """(decoded outer rows, rows for the flow table) of Ethernet frames."""
    fb = FrameBatch.from_frames(frames, linktype=LINKTYPE_ETHERNET)
    pb = decode(fb)
    return pb, flow_rows(fb, pb)


def assert_inner_syn(rows: PacketBatch, i: int) -> None:
    assert rows.status[i] == Status.OK
    assert (rows.src_lo[i], rows.dst_lo[i]) == (V4_SRC_LO, V4_DST_LO)
    assert (rows.proto[i], rows.src_port[i], rows.dst_port[i]) == (6, 50000, 80)
    assert rows.ip_len[i] == 40


MACS = ETH_IPV4[:12]
ETH_TYPE_IPV4 = bytes.fromhex("0800")


def test_plain_batch_is_returned_as_it_is() -> None:
    fb = FrameBatch.from_frames([eth_ipv4_tcp()])
    pb = decode(fb)
    assert flow_rows(fb, pb) is pb


def test_ip_in_ip_4in4_and_6in4_and_4in6() -> None:
    v4in4 = MACS + ETH_TYPE_IPV4 + outer4(IP_TCP, 4)
    v6in4 = MACS + ETH_TYPE_IPV4 + outer4(ipv6(20, 6) + IP_TCP[20:], 41)
    v4in6 = ETH_IPV6 + ipv6(40, 4) + IP_TCP
    outer, rows = run([v4in4, v6in4, v4in6])
    assert outer.proto.tolist() == [4, 41, 4]  # what read_packets shows: the outer layer
    assert outer.dst_lo[0] == OUTER_DST_LO
    assert_inner_syn(rows, 0)
    assert (rows.ip_version[1], rows.proto[1], rows.dst_port[1]) == (6, 6, 80)
    assert_inner_syn(rows, 2)
    # The frame's own lengths and time stay the outer frame's.
    assert rows.wire_len.tolist() == outer.wire_len.tolist()


def test_ip_in_ip_needs_the_exact_inner_length_and_version() -> None:
    longer = MACS + ETH_TYPE_IPV4 + outer4(IP_TCP + bytes(4), 4)  # 4 bytes after the packet
    shorter = MACS + ETH_TYPE_IPV4 + outer4(IP_TCP, 4)[:-4]  # cut by the capture
    wrong = MACS + ETH_TYPE_IPV4 + outer4(IP_TCP, 41)  # protocol 41 but IPv4 inside
    _, rows = run([longer, shorter, wrong])
    assert rows.status.tolist() == [Status.NOT_IP] * 3  # Zeek drops them: no flow


def test_gre_version_0_with_ip_and_with_ethernet() -> None:
    plain = MACS + ETH_TYPE_IPV4 + outer4(gre(0x0800) + IP_TCP, 47)
    keyed = MACS + ETH_TYPE_IPV4 + outer4(
        gre(0x0800, 0x2000 | 0x1000, bytes.fromhex("00000007" "00000001")) + IP_TCP, 47)
    bridged = MACS + ETH_TYPE_IPV4 + outer4(gre(0x6558) + eth_ipv4_tcp(), 47)
    other_type = MACS + ETH_TYPE_IPV4 + outer4(gre(0x1234) + IP_TCP, 47)  # read as IP
    _, rows = run([plain, keyed, bridged, other_type])
    for i in range(4):
        assert_inner_syn(rows, i)


def test_erspan_types_2_and_3() -> None:
    erspan2 = gre(0x88BE, 0x1000, bytes(4)) + bytes(8) + eth_ipv4_tcp()
    erspan3 = gre(0x22EB) + bytes(12) + eth_ipv4_tcp()
    erspan3_platform = gre(0x22EB) + bytes(11) + b"\x01" + bytes(8) + eth_ipv4_tcp()
    erspan1 = gre(0x88BE) + eth_ipv4_tcp()  # no sequence bit: Ethernet right away
    frames = [MACS + ETH_TYPE_IPV4 + outer4(p, 47)
              for p in (erspan2, erspan3, erspan3_platform, erspan1)]
    _, rows = run(frames)
    for i in range(4):
        assert_inner_syn(rows, i)


def test_pptp_enhanced_gre() -> None:
    # Version 1, key bit (payload length | call id), sequence bit; PPP FF 03 0021.
    head = gre(0x880B, 0x2000 | 0x1000 | 0x0001, bytes.fromhex("0028" "0001" "00000003"))
    ok = MACS + ETH_TYPE_IPV4 + outer4(head + bytes.fromhex("ff030021") + IP_TCP, 47)
    lcp = MACS + ETH_TYPE_IPV4 + outer4(head + bytes.fromhex("ff03c021") + bytes(20), 47)
    _, rows = run([ok, lcp])
    assert_inner_syn(rows, 0)
    assert rows.status[1] == Status.NOT_IP


def test_gre_that_zeek_drops_and_a_cut_gre_header() -> None:
    routing = MACS + ETH_TYPE_IPV4 + outer4(gre(0x0800, 0x4000) + IP_TCP, 47)
    reserved = MACS + ETH_TYPE_IPV4 + outer4(gre(0x0800, 0x0008) + IP_TCP, 47)
    version2 = MACS + ETH_TYPE_IPV4 + outer4(gre(0x0800, 0x0002) + IP_TCP, 47)
    cut = MACS + ETH_TYPE_IPV4 + outer4(gre(0x0800, 0x8000, bytes(4)) + IP_TCP, 47)[:14 + 26]
    _, rows = run([routing, reserved, version2, cut])
    assert rows.status.tolist()[:3] == [Status.NOT_IP] * 3
    assert rows.status[3] != Status.OK  # cut inside the GRE header: in no flow either


def test_tunnel_inside_a_tunnel_and_the_depth_limit() -> None:
    nested = MACS + ETH_TYPE_IPV4 + outer4(gre(0x0800) + outer4(IP_TCP, 4), 47)
    deep = IP_TCP
    for _ in range(5):  # five IP-in-IP levels: Zeek opens four
        deep = outer4(deep, 4)
    _, rows = run([nested, MACS + ETH_TYPE_IPV4 + deep])
    assert_inner_syn(rows, 0)
    assert rows.status[1] == Status.NOT_IP


def test_aruba_gre_carries_80211() -> None:
    """Aruba's GRE types (0x8200..., 0x9000) carry an 802.11 data frame (GRE.cc L112-128):
    LLC/SNAP then IPv4 inside gives the inner packet; a protected frame none."""
    wlan = bytes([0x08, 0x02]) + bytes(2) + bytes(18) + bytes(2)  # data, from the AP
    snap = bytes.fromhex("aaaa03" "000000" "0800")
    frames = [MACS + ETH_TYPE_IPV4 + outer4(gre(ptype) + wlan + snap + IP_TCP, 47)
              for ptype in (0x8200, 0x9000)]
    protected = bytes([0x08, 0x42]) + wlan[2:] + bytes(8)
    frames.append(MACS + ETH_TYPE_IPV4 + outer4(gre(0x8200) + protected + bytes(40), 47))
    _, rows = run(frames)
    assert_inner_syn(rows, 0)
    assert_inner_syn(rows, 1)
    assert rows.status[2] == Status.ENCRYPTED  # in no flow: Zeek cannot read ciphertext either


def test_an_amsdu_inside_aruba_gre_gives_each_packet_a_row() -> None:
    """An A-MSDU (QoS data, QoS Control's 0x80 bit) holds subframes of DA, SA, a length,
    then LLC/SNAP and a packet, padded by ``length % 4`` bytes (IEEE802_11.cc L86-134,
    Zeek's rule): every IP packet is a row of its own after the first, in the frame's
    row order; a truncated subframe ends the frame (Zeek's core.tunnels.gre-aruba-amsdu:
    one frame, one TCP flow of 2 packets)."""
    qos_data = bytes([0x88, 0x02]) + bytes(22) + bytes([0x80, 0x00])  # QoS data, A-MSDU
    snap = bytes.fromhex("aaaa03" "000000" "0800")

    def subframe(packet: bytes, last: bool = False) -> bytes:
        length = len(snap) + len(packet)
        pad = b"" if last else bytes(length % 4)
        return bytes(12) + length.to_bytes(2, "big") + snap + packet + pad

    second = IP_TCP[:2] + (41).to_bytes(2, "big") + IP_TCP[4:] + b"x"  # 41 bytes: padding 1
    body = subframe(IP_TCP) + subframe(second) + subframe(IP_TCP, last=True)
    cut = subframe(IP_TCP) + subframe(IP_TCP)[:30]  # the second subframe cut short
    frames = [MACS + ETH_TYPE_IPV4 + outer4(gre(0x8200) + qos_data + b, 47) for b in (body, cut)]
    _, rows = run(frames)
    assert rows.record.tolist() == [0, 0, 0, 1]
    for i in (0, 1, 2, 3):
        assert (rows.src_lo[i], rows.dst_port[i], rows.depth[i]) == (V4_SRC_LO, 80, 1)
    assert rows.ip_len.tolist() == [40, 41, 40, 40]



SNAP_IP = bytes.fromhex("aaaa03" "000000" "0800")
SNAP_ARP = bytes.fromhex("aaaa03" "000000" "0806")
QOS_AMSDU_HEAD = bytes([0x88, 0x02]) + bytes(22) + bytes([0x80, 0x00])  # QoS data, A-MSDU


def subframe(snap: bytes, packet: bytes, last: bool = False) -> bytes:
    """An A-MSDU subframe: DA, SA, length, LLC/SNAP and the packet, then ``length % 4``
    bytes of padding (Zeek's rule, IEEE802_11.cc L120-126) unless it is the last."""
    length = len(snap) + len(packet)
    return bytes(12) + length.to_bytes(2, "big") + snap + packet + (
        b"" if last else bytes(length % 4))


def amsdu_frames() -> list[bytes]:
    """Three 802.11 frames: an A-MSDU of a 40-byte TCP SYN, a 41-byte one (1 byte of
    padding), an ARP packet and the SYN again; an A-MSDU of ARP only; a QoS data frame
    that is no A-MSDU."""
    second = IP_TCP[:2] + (41).to_bytes(2, "big") + IP_TCP[4:] + b"x"
    body = (subframe(SNAP_IP, IP_TCP) + subframe(SNAP_IP, second)
            + subframe(SNAP_ARP, bytes(28)) + subframe(SNAP_IP, IP_TCP, last=True))
    arp_only = subframe(SNAP_ARP, bytes(28), last=True)
    plain = bytes([0x88, 0x02]) + bytes(22) + bytes(2) + SNAP_IP + IP_TCP
    return [QOS_AMSDU_HEAD + body, QOS_AMSDU_HEAD + arp_only, plain]


@pytest.mark.parametrize(("linktype", "head"), [
    (LINKTYPE_IEEE802_11, b""),
    (LINKTYPE_IEEE802_11_RADIOTAP, bytes([0, 0]) + (12).to_bytes(2, "little") + bytes(8)),
])
def test_an_amsdu_in_an_80211_capture_gives_each_packet_a_row(linktype: int, head: bytes
                                                              ) -> None:
    """An A-MSDU at the link layer splits as inside Aruba's GRE (the same IEEE802_11
    analyzer in Zeek): its IP packets are rows of the frame, not tunnelled (depth 0),
    the first in the frame's own row (the decoder reads it); an A-MSDU of ARP only is
    NOT_IP; the decoded batch keeps one row per frame."""
    fb = FrameBatch.from_frames([head + f for f in amsdu_frames()], linktype=linktype)
    pb = decode(fb)
    assert pb.status.tolist() == [Status.OK, Status.NOT_IP, Status.OK]  # first packets
    rows = flow_rows(fb, pb)
    assert rows.record.tolist() == [0, 0, 0, 1, 2]
    assert rows.status.tolist() == [Status.OK] * 3 + [Status.NOT_IP, Status.OK]
    assert rows.ip_len.tolist()[:3] == [40, 41, 40] and rows.ip_len[4] == 40
    assert rows.depth.tolist() == [0] * 5 and not rows.encap.any()
    for i in (0, 1, 2, 4):
        assert (rows.src_lo[i], rows.dst_lo[i], rows.dst_port[i]) == (V4_SRC_LO, V4_DST_LO, 80)


def test_amsdu_packets_make_one_flow_as_in_zeek() -> None:
    """Read as a capture: the four SYNs of the A-MSDU and the plain frame are one S0
    flow of 4 packets (40 + 41 + 40 + 40 IP bytes), as Zeek counts every subframe as a
    packet of the frame's time (ZEEK-FACTS 7.1)."""
    import io

    import tracker
    from captures.writers import Record, pcap_bytes

    records = [Record(1_700_000_000 * 10**9 + 1000 * i, f, len(f))
               for i, f in enumerate(amsdu_frames())]
    flows = tracker.read_flows(io.BytesIO(pcap_bytes(records, LINKTYPE_IEEE802_11)))
    assert len(flows) == 1
    row = flows.iloc[0]
    assert (row.orig_pkts, row.orig_ip_bytes, row.resp_pkts, row.conn_state) == (4, 161, 0, "S0")
    assert flows.attrs["summary"]["frames"] == 3
    rows = tracker.read_packets(io.BytesIO(pcap_bytes(records, LINKTYPE_IEEE802_11)),
                                tunnels=True)
    # Each packet of the A-MSDU a row after its frame's first: 40, 41 and 40 bytes.
    assert rows["ip_len"].fillna(-1).astype(int).tolist() == [40, 41, 40, -1, 40]
    assert rows["flow_id"].fillna(-1).tolist() == [0, 0, 0, -1, 0]
