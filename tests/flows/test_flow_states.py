"""conn_state, history and the netstat states, from hand-written TCP segments.

Every expected value below was worked out by hand from Zeek's rules
(SEMANTICS.md 4, ZEEK-FACTS.md 2): letters per packet, endpoint states, then
main.zeek's conn_state order.
"""

from __future__ import annotations

import pandas as pd
import pytest
from flowrun import ISN_C, ISN_S, C, S, one
from segments import seg, udp

from tracker.flows import FlowOptions

c0, s0 = ISN_C + 1, ISN_S + 1  # first data sequence numbers after the SYNs
HANDSHAKE = [seg(0.0, C, "S", seq=ISN_C), seg(0.1, S, "SA", seq=ISN_S, ack=c0),
             seg(0.2, C, "A", seq=c0, ack=s0)]
C_FIN = seg(0.5, C, "FA", seq=c0, ack=s0)
S_ACKS_C_FIN = seg(0.6, S, "A", seq=s0, ack=c0 + 1)
S_FIN = seg(0.7, S, "FA", seq=s0, ack=c0 + 1)
C_ACKS_S_FIN = seg(0.8, C, "A", seq=c0 + 1, ack=s0 + 1)
SYN_ACK_FROM_SERVER = seg(0.0, S, "SA", seq=ISN_S, ack=c0)

CASES = {
    # name: (segments, conn_state, history)
    "S0 lone SYN": ([HANDSHAKE[0]], "S0", "S"),
    "S1 established": (HANDSHAKE, "S1", "ShA"),
    "SF normal close": (HANDSHAKE + [C_FIN, S_ACKS_C_FIN, S_FIN, C_ACKS_S_FIN], "SF", "ShAFaf"),
    "REJ": ([HANDSHAKE[0], seg(0.1, S, "RA", seq=0, ack=c0)], "REJ", "Sr"),
    "S2 originator closed": (HANDSHAKE + [C_FIN], "S2", "ShAF"),
    "S3 responder closed": (HANDSHAKE + [seg(0.5, S, "FA", seq=s0, ack=c0)], "S3", "ShAf"),
    "RSTO": (HANDSHAKE + [seg(0.5, C, "R", seq=c0)], "RSTO", "ShAR"),
    "RSTR": (HANDSHAKE + [seg(0.5, S, "R", seq=s0)], "RSTR", "ShAr"),
    "RSTOS0 SYN then RST": ([HANDSHAKE[0], seg(0.2, C, "R", seq=c0)], "RSTOS0", "SR"),
    # The responder acks the SYN without a SYN-ACK (stays INACTIVE), as syn-then-ack-then-rst.
    "RSTOS0 SYN ack RST": ([HANDSHAKE[0], seg(0.1, S, "A", seq=ISN_S, ack=c0),
                            seg(0.2, C, "R", seq=c0)], "RSTOS0", "SaR"),
    "OTH: an own ACK breaks the RSTOS0 pattern": (
        [HANDSHAKE[0], seg(0.1, C, "A", seq=c0, ack=9), seg(0.2, C, "R", seq=c0)], "OTH", "SAR"),
    # SYN-ACK from 80 flips at creation (^), then the server resets: no SYN was seen.
    "RSTRH": ([SYN_ACK_FROM_SERVER, seg(0.1, S, "R", seq=s0)], "RSTRH", "^hr"),
    "SH SYN then FIN": ([HANDSHAKE[0], seg(0.2, C, "F", seq=c0)], "SH", "SF"),
    "SHR SYN-ACK then FIN": ([SYN_ACK_FROM_SERVER, seg(0.1, S, "FA", seq=s0, ack=c0)],
                             "SHR", "^hf"),
    "OTH midstream": ([seg(0.0, C, "PA", seq=1000, ack=2000, length=10),
                       seg(0.1, S, "PA", seq=2000, ack=1010, length=20)], "OTH", "Dd"),
    "OTH lone RST": ([seg(0.0, C, "R", seq=1000)], "OTH", "R"),
    "I: FIN+RST": ([HANDSHAKE[0], seg(0.2, C, "FR", seq=c0)], "OTH", "SI"),
    "Q: SYN+FIN": ([seg(0.0, C, "SF", seq=ISN_C)], "SH", "Q"),
    "T: retransmitted data": (HANDSHAKE + [seg(0.3, C, "PA", seq=c0, ack=s0, length=10),
                                           seg(0.4, C, "PA", seq=c0, ack=s0, length=10)],
                              "S1", "ShADT"),
    "W: zero window": ([HANDSHAKE[0], seg(0.1, S, "SA", seq=ISN_S, ack=c0, window=0)],
                       "S1", "Shw"),
    "F again with new sequence number": (
        HANDSHAKE + [C_FIN, seg(0.6, C, "FA", seq=c0 + 10, ack=s0)], "S2", "ShAFF"),
    "F retransmitted": (HANDSHAKE + [C_FIN, C_FIN], "S2", "ShAF"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_conn_state_and_history(name: str) -> None:
    segs, state, history = CASES[name]
    flow = one(segs)
    assert (flow["conn_state"], flow["history"]) == (state, history)


def test_retransmissions_are_scaled_1_10_100() -> None:
    """T at the 1st and the 10th retransmission, not in between (Conn.cc ScaledHistoryEntry)."""
    again = [seg(0.3 + k / 100, C, "PA", seq=c0, ack=s0, length=10) for k in range(11)]
    assert one(HANDSHAKE + again)["history"] == "ShADTT"  # 10 retransmissions after the D
    assert one(HANDSHAKE + again[:10])["history"] == "ShADT"  # 9 of them


NETSTAT = {
    # name: (segments, orig_state, resp_state, conntrack state)
    "SYN_SENT / none": ([HANDSHAKE[0]], "SYN_SENT", None, "SYN_SENT"),
    "SYN_SENT / SYN_RECV": (HANDSHAKE[:2], "SYN_SENT", "SYN_RECV", "SYN_RECV"),
    "ESTABLISHED": (HANDSHAKE, "ESTABLISHED", "ESTABLISHED", "ESTABLISHED"),
    "FIN_WAIT1 / CLOSE_WAIT": (HANDSHAKE + [C_FIN], "FIN_WAIT1", "CLOSE_WAIT", "FIN_WAIT"),
    "FIN_WAIT2 / CLOSE_WAIT": (HANDSHAKE + [C_FIN, S_ACKS_C_FIN], "FIN_WAIT2", "CLOSE_WAIT",
                               "CLOSE_WAIT"),
    "TIME_WAIT / LAST_ACK": (HANDSHAKE + [C_FIN, S_ACKS_C_FIN, S_FIN], "TIME_WAIT",
                             "LAST_ACK", "LAST_ACK"),
    "TIME_WAIT / CLOSE": (HANDSHAKE + [C_FIN, S_ACKS_C_FIN, S_FIN, C_ACKS_S_FIN], "TIME_WAIT",
                          "CLOSE", "TIME_WAIT"),
    # Both FINs cross: the server's FIN does not ack the client's.
    "CLOSING / LAST_ACK": (HANDSHAKE + [C_FIN, seg(0.6, S, "FA", seq=s0, ack=c0)], "CLOSING",
                           "LAST_ACK", "LAST_ACK"),
    "reset: CLOSE / CLOSE": (HANDSHAKE + [seg(0.5, S, "R", seq=s0)], "CLOSE", "CLOSE", "CLOSE"),
}


@pytest.mark.parametrize("name", list(NETSTAT))
def test_netstat_states(name: str) -> None:
    segs, orig, resp, state = NETSTAT[name]
    flow = one(segs)
    got = [None if flow[c] != flow[c] else flow[c] for c in ("orig_state", "resp_state")]
    assert (got[0], got[1], flow["state"]) == (orig, resp, state)


def test_udp_states() -> None:
    ends = "10.0.0.1:5555 > 10.0.0.9:7777"
    back = "10.0.0.9:7777 > 10.0.0.1:5555"
    only = one([udp(0, ends)])
    assert (only["conn_state"], only["history"], only["state"]) == ("S0", "D", "UNREPLIED")
    both = one([udp(0, ends), udp(0.5, back)])
    assert (both["conn_state"], both["history"], both["state"]) == ("SF", "Dd", "REPLIED")
    long = one([udp(0, ends), udp(0.5, back), udp(2.5, ends)])
    assert long["state"] == "ASSURED"
    assert long["orig_state"] != long["orig_state"]  # no netstat state for UDP: <NA>


def test_sequence_space_bytes() -> None:
    """orig_bytes / resp_bytes from sequence numbers, without SYN and FIN (Zeek Size())."""
    data = [seg(0.3, C, "PA", seq=c0, ack=s0, length=100),
            seg(0.4, S, "PA", seq=s0, ack=c0 + 100, length=300)]
    fin = [seg(0.5, C, "FA", seq=c0 + 100, ack=s0 + 300),
           seg(0.6, S, "FA", seq=s0 + 300, ack=c0 + 101)]
    flow = one(HANDSHAKE + data + fin)
    assert (flow["orig_bytes"], flow["resp_bytes"]) == (100, 300)
    assert (flow["orig_payload_bytes"], flow["resp_payload_bytes"]) == (100, 300)
    assert (flow["orig_pkts"], flow["resp_pkts"]) == (4, 3)
    assert (flow["orig_ip_bytes"], flow["resp_ip_bytes"]) == (4 * 40 + 100, 3 * 40 + 300)


def test_bytes_unset_when_duration_is_zero() -> None:
    flow = one([HANDSHAKE[0]])
    assert pd.isna(flow["orig_bytes"]) and pd.isna(flow["resp_bytes"])


def _frames_run(frames: list[bytes], ts: list[float], verify: bool = True) -> pd.DataFrame:
    from tracker.decode import decode
    from tracker.flows import FlowRecords, FlowTable
    from tracker.frames import FrameBatch
    from tracker.report.flows import flows_dataframe

    fb = FrameBatch.from_frames(frames, ts_ns=[round(t * 1e9) for t in ts])
    table = FlowTable(FlowOptions(verify_checksums=verify))
    return flows_dataframe(FlowRecords.concat([table.update(decode(fb)), table.flush()]))


def test_bad_checksum_letter_and_no_count() -> None:
    """A bad checksum: 'C' in history and the packet is not counted (Zeek without -C)."""
    scapy = pytest.importorskip("scapy.all")

    def tcp(src: str, dst: str, sport: int, dport: int, **kw: object) -> bytes:
        return bytes(scapy.Ether() / scapy.IP(src=src, dst=dst) / scapy.TCP(sport=sport,
                                                                             dport=dport, **kw))

    hs = [tcp("10.0.0.1", "10.0.0.2", 40000, 80, flags="S", seq=ISN_C),
          tcp("10.0.0.2", "10.0.0.1", 80, 40000, flags="SA", seq=ISN_S, ack=c0),
          tcp("10.0.0.1", "10.0.0.2", 40000, 80, flags="A", seq=c0, ack=s0)]
    bad = tcp("10.0.0.1", "10.0.0.2", 40000, 80, flags="PA", seq=c0, ack=s0, chksum=0xDEAD)
    flow = _frames_run([*hs, bad], [0, 0.1, 0.2, 0.3]).iloc[0]
    assert (flow["history"], flow["orig_pkts"], flow["conn_state"]) == ("ShAC", 2, "S1")


def test_bad_ipv4_header_checksum_is_no_packet_at_all() -> None:
    """A bad IPv4 header checksum drops the packet before any flow exists (ZEEK-FACTS 9.1,
    Zeek's bad_IP_checksum weird has no uid): the handshake's ACK with one is not counted
    and leaves no 'C', while the same ACK with a bad TCP checksum does leave one."""
    scapy = pytest.importorskip("scapy.all")

    def tcp(src: str, dst: str, sport: int, dport: int, ip: dict[str, int] | None = None,
            **kw: object) -> bytes:
        return bytes(scapy.Ether() / scapy.IP(src=src, dst=dst, **(ip or {}))
                     / scapy.TCP(sport=sport, dport=dport, **kw))

    hs = [tcp("10.0.0.1", "10.0.0.2", 40000, 80, flags="S", seq=ISN_C),
          tcp("10.0.0.2", "10.0.0.1", 80, 40000, flags="SA", seq=ISN_S, ack=c0)]
    bad_ip = tcp("10.0.0.1", "10.0.0.2", 40000, 80, ip={"chksum": 0xBEEF}, flags="A",
                 seq=c0, ack=s0)
    flow = _frames_run([*hs, bad_ip], [0, 0.1, 0.2]).iloc[0]
    # SYN and SYN-ACK: Zeek's SYN-ACK establishes both endpoints, S1 (rule 7).
    assert (flow["history"], flow["orig_pkts"], flow["conn_state"]) == ("Sh", 1, "S1")
    lone = _frames_run([bad_ip], [0])
    assert len(lone) == 0  # no flow at all, not even an empty one
    unverified = _frames_run([*hs, bad_ip], [0, 0.1, 0.2], verify=False).iloc[0]
    assert (unverified["history"], unverified["orig_pkts"]) == ("ShA", 2)  # Zeek -C


def test_ipv4_total_length_zero_counts_one_packet_and_no_bytes() -> None:
    """TSO (ZEEK-FACTS 9.2): with checksums verified (Zeek without -C) the packet is
    dropped; without, it counts 1 packet and the header's 0 IP bytes, and its TCP bytes
    come from sequence numbers: 100 bytes of data after the SYN."""
    scapy = pytest.importorskip("scapy.all")
    ip = {"src": "10.0.0.1", "dst": "10.0.0.2"}
    syn = bytes(scapy.Ether() / scapy.IP(**ip) / scapy.TCP(sport=40000, dport=80, flags="S",
                                                           seq=ISN_C))
    data = scapy.Ether() / scapy.IP(**ip) / scapy.TCP(sport=40000, dport=80, flags="PA",
                                                      seq=c0, ack=s0) / (b"x" * 100)
    data[scapy.IP].len = 0
    tso = bytes(data)
    assert tso[16:18] == b"\x00\x00"  # the total length field
    verified = _frames_run([syn, tso], [0, 0.1]).iloc[0]
    assert (verified["orig_pkts"], verified["orig_ip_bytes"], verified["history"]) == (1, 40, "S")
    flow = _frames_run([syn, tso], [0, 0.1], verify=False).iloc[0]
    assert (flow["orig_pkts"], flow["orig_ip_bytes"], flow["orig_bytes"]) == (2, 40, 100)
    assert flow["history"] == "SD"


def test_ipv6_payload_length_zero_and_no_next_header() -> None:
    """ZEEK-FACTS 9.4: payload length 0 is 40 IP bytes; UDP still counts its datagrams
    (UDP length 20 - 8 = 12 bytes each; set as the flow lasts > 0 s); next header 59
    makes no flow at all."""
    scapy = pytest.importorskip("scapy.all")
    from scapy.layers.inet6 import IPv6

    udp = scapy.Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2", plen=0) / scapy.UDP(
        sport=5000, dport=6000) / (b"q" * 12)
    none = scapy.Ether() / IPv6(src="2001:db8::1", dst="2001:db8::3", nh=59, plen=0)
    df = _frames_run([bytes(udp), bytes(none), bytes(udp)], [0, 0.05, 0.1], verify=False)
    assert len(df) == 1
    flow = df.iloc[0]
    assert (flow["proto"], flow["orig_pkts"], flow["orig_ip_bytes"], flow["orig_bytes"]) == (
        "udp", 2, 80, 24)


def test_udp_length_field_under_8_is_a_datagram_to_zeek() -> None:
    """A UDP length field under 8, the header whole in the IP payload: MALFORMED to the
    decoder, but Zeek keys the connection on the header and delivers the datagram
    (UDP.cc L136-189): a packet, its IP bytes and 'D', and the field minus 8 as bytes,
    negative as that is. UDPSessionAdapter::UpdateLength starts a side's total anew once
    it went negative, and a negative total is UDP_INACTIVE with size 0
    (UpdateEndpointVal), so S0 needs the last total >= 0 (conn/main.zeek L231-236).
    Written from those lines: 20 + 8 + 10 = 38 IP bytes a packet, 10 payload bytes."""
    scapy = pytest.importorskip("scapy.all")
    from tracker.decode import decode
    from tracker.frames import FrameBatch
    from tracker.packets import Status

    def dgram(length: int, chksum: int = 0) -> bytes:  # 0: no checksum (IPv4)
        return bytes(scapy.Ether() / scapy.IP(src="10.0.0.1", dst="10.0.0.2")
                     / scapy.UDP(sport=40000, dport=9999, len=length, chksum=chksum)
                     / (b"x" * 10))

    short, normal = dgram(4), dgram(18)
    assert decode(FrameBatch.from_frames([short])).status[0] == Status.MALFORMED
    lone = _frames_run([short], [0]).iloc[0]
    assert (lone["orig_pkts"], lone["orig_ip_bytes"], lone["history"], lone["conn_state"]) == (
        1, 38, "D", "OTH")
    anew = _frames_run([short, normal], [0, 0.5]).iloc[0]  # -4, then 10 anew
    assert (anew["orig_pkts"], anew["orig_ip_bytes"], anew["orig_bytes"], anew["conn_state"]
            ) == (2, 76, 10, "S0")
    less = _frames_run([normal, short], [0, 0.5]).iloc[0]  # 10 - 4
    assert (less["orig_bytes"], less["conn_state"]) == (6, "S0")
    below = _frames_run([normal, dgram(0), dgram(0)], [0, 0.5, 1]).iloc[0]  # 10 - 8 - 8
    assert (below["orig_pkts"], below["orig_bytes"], below["conn_state"]) == (3, 0, "OTH")
    # a bad checksum, over the IP payload as for any datagram: the connection, a 'C', no count
    bad = _frames_run([dgram(4, chksum=0xDEAD)], [0]).iloc[0]
    assert (bad["orig_pkts"], bad["history"]) == (0, "C")


def test_ntp_role_flip_counts_as_zeek() -> None:
    """Zeek's baseline scripts.base.protocols.ntp.misordered-ntp (ZEEK-FACTS 9.3): a
    server-mode reply first, then the client's request. The NTP analyzer flips the roles
    in the middle of the first packet: history D^, both packets on the new originator's
    side (152 IP bytes), its UDP bytes 2 x 48 = 96, conn_state S0. In bare mode without
    the ntp script nothing flips."""
    scapy = pytest.importorskip("scapy.all")
    server, client = "17.253.4.253", "192.168.1.95"

    def ntp(src: str, dst: str, mode: int) -> bytes:
        payload = bytes([0x20 | mode]) + bytes(47)  # version 4, the mode, zeros
        return bytes(scapy.Ether() / scapy.IP(src=src, dst=dst) / scapy.UDP(
            sport=123, dport=123) / payload)

    frames = [ntp(server, client, 4), ntp(client, server, 3)]
    flow = _frames_run(frames, [0, 0.2], verify=False).iloc[0]
    got = (flow["orig_addr"], flow["history"], flow["orig_pkts"], flow["orig_ip_bytes"],
           flow["resp_pkts"], flow["resp_ip_bytes"], flow["orig_bytes"], flow["resp_bytes"],
           flow["conn_state"])
    assert got == (client, "D^", 2, 152, 0, 0, 96, 0, "S0")
    from tracker.decode import decode
    from tracker.flows import FlowRecords, FlowTable
    from tracker.frames import FrameBatch
    from tracker.report.flows import flows_dataframe

    fb = FrameBatch.from_frames(frames, ts_ns=[0, 200_000_000])
    table = FlowTable(FlowOptions.zeek_bare([]))
    bare = flows_dataframe(FlowRecords.concat([table.update(decode(fb)), table.flush()]))
    assert (bare.iloc[0]["orig_addr"], bare.iloc[0]["history"]) == (server, "Dd")


def test_tcp_header_cut_by_the_snaplen_makes_the_flow_and_counts_nothing() -> None:
    """ZEEK-FACTS 4.1 and 7.6 (baseline core.vntag-in-vlan): a SYN-ACK whose 40-byte TCP
    header is cut by the snaplen after the fixed 20 bytes: Zeek's connection exists with
    0 packets and history '-'. A later whole packet of the pair joins that flow. A cut
    inside the fixed header makes no flow at all."""
    scapy = pytest.importorskip("scapy.all")
    from tracker.decode import decode
    from tracker.flows import FlowRecords, FlowTable
    from tracker.frames import FrameBatch
    from tracker.report.flows import flows_dataframe

    opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None),
            ("WScale", 7)]
    synack = bytes(scapy.Ether() / scapy.IP(src="10.0.0.2", dst="10.0.0.1") / scapy.TCP(
        sport=80, dport=40000, flags="SA", seq=ISN_S, ack=c0, options=opts))
    assert (synack[46] >> 4) * 4 == 40  # a 40-byte TCP header
    later = bytes(scapy.Ether() / scapy.IP(src="10.0.0.2", dst="10.0.0.1") / scapy.TCP(
        sport=80, dport=40000, flags="A", seq=s0, ack=c0))

    def run(frames: list[bytes], caplens: list[int]) -> pd.DataFrame:
        cut = [f[:c] for f, c in zip(frames, caplens, strict=True)]
        fb = FrameBatch.from_frames(cut, ts_ns=[i * 10**8 for i in range(len(cut))],
                                    wire_len=[len(f) for f in frames])
        table = FlowTable(FlowOptions())
        return flows_dataframe(FlowRecords.concat([table.update(decode(fb)), table.flush()]))

    alone = run([synack], [14 + 20 + 30])  # the fixed header and 10 option bytes
    assert len(alone) == 1
    flow = alone.iloc[0]
    # A SYN-ACK from port 80 (a likely server port) to 40000 flips the new connection:
    # history '^' alone (ZEEK-FACTS 2.1), the client is the originator.
    assert (flow["orig_pkts"], flow["resp_pkts"], flow["history"], flow["conn_state"]) == (
        0, 0, "^", "OTH")
    assert (flow["orig_addr"], flow["orig_port"]) == ("10.0.0.1", 40000)
    joined = run([synack, later], [14 + 20 + 30, len(later)])
    assert len(joined) == 1 and joined.iloc[0]["orig_pkts"] + joined.iloc[0]["resp_pkts"] == 1
    assert len(run([synack], [14 + 20 + 12])) == 0  # the fixed header itself is cut


def test_bad_checksum_syn_then_good_syn_is_reuse() -> None:
    """The endpoint never saw a good packet (ISN 0), so the good SYN starts a new flow.

    As Zeek's localhost-bad-chksum baseline: a "C" OTH line with 0 packets first.
    """
    scapy = pytest.importorskip("scapy.all")
    syn = scapy.Ether() / scapy.IP(src="10.0.0.1", dst="10.0.0.2") / scapy.TCP(
        sport=40000, dport=80, flags="S", seq=ISN_C)
    bad = syn.copy()
    bad[scapy.TCP].chksum = 0xDEAD
    df = _frames_run([bytes(bad), bytes(syn)], [0, 0.1])
    got = [(r.history, r.conn_state, r.orig_pkts, r.end_reason) for r in df.itertuples()]
    assert got == [("C", "OTH", 0, "reuse"), ("S", "S0", 1, "eof")]


def test_tcp_under_an_ipv6_payload_length_of_0_makes_the_flow_and_counts_nothing() -> None:
    """ZEEK-FACTS 9.4 (TCP.cc: InitConnKey reads the frame's bytes, DeliverPacket takes
    the payload length, 0, and drops the segment as truncated_header): a SYN under an
    IPv6 payload length of 0 makes the connection, its sender the originator, and counts
    nothing; the client's next packet, an ACK with its payload length, is counted on it.
    A SYN-ACK from the server instead is a reuse of that connection (TCPSessionAdapter::
    IsReuse: the originator never left INACTIVE and the SYN-ACK's sequence number is not
    the responder's start), so Zeek logs the first with 0 packets and starts another."""
    from tests.decode.decode_frames import ETH_IPV6, TCP_SYN, V6_DST, V6_SRC, ipv6
    from tracker.decode import decode
    from tracker.flows import FlowRecords, FlowTable
    from tracker.frames import FrameBatch
    from tracker.report.flows import flows_dataframe

    def run(frames: list[bytes]) -> pd.DataFrame:
        fb = FrameBatch.from_frames(frames, ts_ns=[0, 10**8])
        table = FlowTable(FlowOptions(verify_checksums=False))
        return flows_dataframe(FlowRecords.concat([table.update(decode(fb), fb), table.flush()]))

    syn = ETH_IPV6 + ipv6(0, 6) + TCP_SYN
    ack = ETH_IPV6 + ipv6(20, 6) + bytes.fromhex("c3500050" "00000065" "0000012d" "5010faf0"
                                                   "00000000")
    df = run([syn, ack])
    assert len(df) == 1
    flow = df.iloc[0]
    assert (flow["orig_port"], flow["resp_port"], flow["orig_pkts"], flow["resp_pkts"]) == \
        (50000, 80, 1, 0)
    assert flow["orig_ip_bytes"] == 60
    back = ipv6(20, 6)[:8] + V6_DST + V6_SRC
    synack = ETH_IPV6 + back + bytes.fromhex("0050c350" "0000012c" "00000065" "5012faf0"
                                             "00000000")
    df = run([syn, synack])
    assert df["end_reason"].tolist() == ["reuse", "eof"]
    assert (df["orig_pkts"] + df["resp_pkts"]).tolist() == [0, 1]
    assert df["orig_port"].tolist() == [50000, 50000]  # the SYN-ACK from port 80 flips
