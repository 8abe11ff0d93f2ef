"""Originator choice, flips, reuse, timers, keys, the open-flow cap and options.

Expected values are worked out by hand from ZEEK-FACTS.md (sections 2 and 3)
and SEMANTICS.md (sections 1, 2 and 5).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from flowrun import ISN_C, ISN_S, C, S, flows, one
from segments import Seg, batch, icmp, seg, udp

from tracker.errors import OptionError
from tracker.flows import FlowOptions, FlowRecords, FlowTable
from tracker.flows.options import bare_mode_ports
from tracker.packets import Status
from tracker.report.columns import FLOW_COLUMNS
from tracker.report.flows import flows_dataframe

BARE = FlowOptions(likely_server_tcp=frozenset(), likely_server_udp=frozenset())
c0, s0 = ISN_C + 1, ISN_S + 1


def who(flow: pd.Series) -> tuple[str, int, str]:
    return flow["orig_addr"], flow["orig_port"], flow["history"]


# --- originator and flips (ZEEK-FACTS.md 2) -----------------------------------

def test_syn_ack_first_flips_on_the_next_ack() -> None:
    flow = one([seg(0, S, "SA", seq=ISN_S, ack=c0), seg(0.1, C, "A", seq=c0, ack=s0)], BARE)
    assert who(flow) == ("10.0.0.1", 40000, "^hA")
    assert flow["orig_reason"] == "synack"


def test_syn_ack_from_a_server_port_flips_at_once() -> None:
    flow = one([seg(0, S, "SA", seq=ISN_S, ack=c0)])
    assert who(flow) == ("10.0.0.1", 40000, "^h")
    assert flow["orig_reason"] == "server_port"


def test_midstream_data_from_a_server_port_flips() -> None:
    flow = one([seg(0, S, "PA", seq=5000, ack=7000, length=10)])
    assert (who(flow), flow["orig_reason"]) == (("10.0.0.1", 40000, "^d"), "server_port")


@pytest.mark.parametrize(("ends", "flags", "expected"), [
    ("10.0.0.2:80 > 10.0.0.1:443", "PA", ("10.0.0.1", 443, "^d")),  # 80 < 443: flip
    ("10.0.0.1:443 > 10.0.0.2:80", "PA", ("10.0.0.1", 443, "D")),  # 443 > 80: no flip
    ("10.0.0.2:80 > 10.0.0.1:443", "SA", ("10.0.0.2", 80, "H")),  # never for a SYN-ACK
])
def test_both_ports_likely_server_ports(ends: str, flags: str, expected: tuple) -> None:
    assert who(one([seg(0, ends, flags, seq=5000, ack=7000, length=10 * ("P" in flags))])) \
        == expected


def test_syn_and_syn_ack_seen_in_reverse_order() -> None:
    """The SYN's seq is the SYN-ACK's ack - 1: flip and establish (TCPSessionAdapter L747)."""
    flow = one([seg(0, S, "SA", seq=ISN_S, ack=c0), seg(0.001, C, "S", seq=ISN_C)], BARE)
    assert who(flow) == ("10.0.0.1", 40000, "Hs^")
    assert (flow["conn_state"], flow["orig_reason"]) == ("S1", "syn")


def test_udp_flip_and_broadcast_exception() -> None:
    flow = one([udp(0, "8.8.8.8:53 > 10.0.0.1:5555")])
    assert who(flow) == ("10.0.0.1", 5555, "^d")
    assert flow["conn_state"] == "SHR"
    bcast = one([udp(0, "10.0.0.9:67 > 255.255.255.255:68")])
    assert who(bcast) == ("10.0.0.9", 67, "D")
    assert bcast["conn_state"] == "S0"


# --- reuse (ZEEK-FACTS.md 3.5) ------------------------------------------------

def test_syn_after_reset_is_a_new_flow() -> None:
    segs = [seg(0, C, "S", seq=ISN_C), seg(0.05, S, "RA", seq=0, ack=c0),
            seg(0.5, C, "S", seq=ISN_C), seg(0.55, S, "RA", seq=0, ack=c0)]
    df = flows(segs)
    assert list(df["history"]) == ["Sr", "Sr"]
    assert list(df["conn_state"]) == ["REJ", "REJ"]
    assert list(df["end_reason"]) == ["reuse", "eof"]


def test_syn_with_a_new_isn_is_reuse_and_a_retransmission_is_not() -> None:
    df = flows([seg(0, C, "S", seq=ISN_C), seg(1, C, "S", seq=ISN_C), seg(2, C, "S", seq=999)])
    assert list(df["orig_pkts"]) == [2, 1]
    assert list(df["end_reason"]) == ["reuse", "eof"]


# --- timers (ZEEK-FACTS.md 3) -------------------------------------------------

def test_syn_retries_give_three_attempts() -> None:
    """Linux retries at 0, 1, 3, 7, 15 s: the 5 s attempt timer cuts {0,1,3}, {7}, {15}."""
    df = flows([seg(t, C, "S", seq=ISN_C) for t in (0, 1, 3, 7, 15)])
    assert list(df["orig_pkts"]) == [3, 1, 1]
    assert list(df["conn_state"]) == ["S0", "S0", "S0"]
    assert list(df["end_reason"]) == ["idle", "idle", "eof"]


def _closed_flow() -> list[Seg]:
    return [seg(0, C, "S", seq=ISN_C), seg(0.1, S, "SA", seq=ISN_S, ack=c0),
            seg(0.2, C, "FA", seq=c0, ack=s0), seg(0.3, S, "FA", seq=s0, ack=c0 + 1),
            seg(0.4, C, "A", seq=c0 + 1, ack=s0 + 1)]


@pytest.mark.parametrize(("later", "ended"), [(5.29, False), (5.3, True)])
def test_closed_flow_goes_5_s_after_its_close(later: float, ended: bool) -> None:
    """Both FINs by 0.3 s: removal at 0.3 + 5; the last ACK at 0.4 moves nothing (Zeek's
    last_time stops once both sides closed)."""
    table = FlowTable()
    assert len(table.update(batch(_closed_flow()))) == 0
    out = table.update(batch([udp(later, "10.0.0.7:1 > 10.0.0.8:2")]))
    assert len(out) == int(ended)
    if ended:
        assert flows_dataframe(out).iloc[0][["conn_state", "end_reason"]].tolist() == ["SF",
                                                                                     "fin"]


@pytest.mark.parametrize(("gap", "n"), [(59.999, 1), (60.0, 2)])
def test_udp_idle_timeout_is_inclusive(gap: float, n: int) -> None:
    assert len(flows([udp(0, "10.0.0.1:5000 > 10.0.0.2:6000"),
                      udp(gap, "10.0.0.1:5000 > 10.0.0.2:6000")])) == n


# DNS_Analyzer::ExpireTimer (DNS.cc L2356, L2386-2397; dns_session_timeout 10 s): a check
# at creation + 10 s, run at the first packet at or after it (t = that packet's time),
# ends the flow when t - last_time >= 9 s, else the next check is at t + 10 s.
DNS_Q = "10.0.0.1:40000 > 10.0.0.2:53"


@pytest.mark.parametrize(("times", "starts"), [
    ((0, 0.2, 9.9), [0.0]),  # the check at 10 s is not due yet
    ((0, 0.2, 10.0), [0.0, 10.0]),  # due: 10.0 - 0.2 >= 9, the third packet starts anew
    ((0, 9.5, 18.4), [0.0]),  # the check runs at 18.4: 8.9 s quiet < 9, next at 28.4
    ((0, 9.5, 18.6), [0.0, 18.6]),  # ... at 18.6: 9.1 s quiet, ended
    ((0, 9.5, 18.4, 27.5, 28.4), [0.0]),  # checks at 18.4 and 28.4 each find < 9 s
])
def test_dns_flow_ends_by_the_dns_analyzers_expire_check(times: tuple[float, ...],
                                                         starts: list[float]) -> None:
    df = flows([udp(t, DNS_Q) for t in times])
    assert df["first_ts"].map(lambda ts: ts.value / 1e9).tolist() == starts
    assert df["end_reason"].tolist() == ["idle"] * (len(starts) - 1) + ["eof"]


def test_dns_expire_needs_the_dns_analyzer() -> None:
    """Not on a responder port without it (nor in bare mode without base/protocols/dns):
    the flow lives on to the 60 s UDP inactivity."""
    late = (0, 0.2, 30.0)
    assert len(flows([udp(t, "10.0.0.1:40000 > 10.0.0.2:6000") for t in late])) == 1
    assert len(flows([udp(t, DNS_Q) for t in late], FlowOptions.zeek_bare())) == 1
    assert len(flows([udp(t, DNS_Q) for t in late], FlowOptions.zeek_bare(["dns"]))) == 2
    assert len(flows([udp(t, DNS_Q) for t in late], FlowOptions(dns_ports=frozenset()))) == 1
    assert len(flows([udp(t, DNS_Q) for t in late],
                     FlowOptions(dns_session_timeout=60.0))) == 1


@pytest.mark.parametrize(("gap", "n"), [(299.9, 1), (300.0, 2)])
def test_tcp_idle_timeout_after_the_handshake(gap: float, n: int) -> None:
    segs = [seg(0, C, "S", seq=ISN_C), seg(0.1, S, "SA", seq=ISN_S, ack=c0),
            seg(0.2, C, "A", seq=c0, ack=s0), seg(0.2 + gap, C, "PA", seq=c0, ack=s0, length=5)]
    df = flows(segs)
    assert len(df) == n
    assert df.iloc[0]["end_reason"] == ("idle" if n == 2 else "eof")


@pytest.mark.parametrize(("gap", "reason"), [(59.9, "eof"), (60.0, "idle")])
def test_tcp_in_the_handshake_uses_the_udp_timeout(gap: float, reason: str) -> None:
    """TCP.cc L23: 60 s until an endpoint leaves the handshake (no attempt timer here)."""
    segs = [seg(0, C, "S", seq=ISN_C), udp(gap, "10.0.0.7:1 > 10.0.0.8:2")]
    df = flows(segs, FlowOptions(tcp_attempt_delay=0))
    assert df[df["proto"] == "tcp"]["end_reason"].tolist() == [reason]


def test_icmp_idle_timeout() -> None:
    segs = [icmp(0, "10.0.0.1", "10.0.0.2", 8), icmp(60, "10.0.0.1", "10.0.0.2", 8)]
    assert list(flows(segs)["end_reason"]) == ["idle", "eof"]


# --- keys (SEMANTICS.md 1) ----------------------------------------------------

def test_icmp_echo_pairs_and_unreachables_do_not() -> None:
    echo = one([icmp(0, "10.0.0.1", "10.0.0.2", 8), icmp(0.1, "10.0.0.2", "10.0.0.1", 0)])
    assert (echo["orig_addr"], echo["orig_port"], echo["resp_port"]) == ("10.0.0.1", 8, 0)
    assert (echo["proto"], echo["conn_state"]) == ("icmp", "OTH")
    assert pd.isna(echo["history"])  # no history letters: Zeek prints -
    assert (echo["orig_pkts"], echo["resp_pkts"], echo["orig_bytes"]) == (1, 1, 56)
    unreach = flows([icmp(0, "10.0.0.1", "10.0.0.2", 3, 1), icmp(0.1, "10.0.0.2", "10.0.0.1", 3, 1)])
    assert len(unreach) == 2  # one-way types are not canonicalized
    assert list(unreach["resp_port"]) == [1, 1]  # the code


def test_other_protocols_have_ports_zero() -> None:
    a = Seg(0, "10.0.0.1", -1, "10.0.0.2", -1, proto=132, length=100)
    b = Seg(0.1, "10.0.0.2", -1, "10.0.0.1", -1, proto=132, length=60)
    flow = one([a, b])
    assert (flow["proto"], flow["orig_port"], flow["resp_port"]) == ("132", 0, 0)
    assert (flow["conn_state"], flow["orig_bytes"], flow["resp_bytes"]) == ("OTH", 0, 0)


def test_vlan_in_the_key_is_an_option() -> None:
    segs = [udp(0, "10.0.0.1:5000 > 10.0.0.2:6000", vlan=10),
            udp(0.1, "10.0.0.1:5000 > 10.0.0.2:6000", vlan=20)]
    assert len(flows(segs)) == 1
    df = flows(segs, FlowOptions(vlan_in_key=True))
    assert sorted(df["vlan"].tolist()) == [10, 20]


def test_ipv6_flows() -> None:
    flow = one([udp(0, "2001:db8::1:5000 > 2001:db8::2:6000", 10),
                udp(0.1, "2001:db8::2:6000 > 2001:db8::1:5000", 20)])
    assert (flow["orig_addr"], flow["resp_addr"], flow["history"]) == ("2001:db8::1",
                                                                     "2001:db8::2", "Dd")
    assert (flow["orig_ip_bytes"], flow["resp_ip_bytes"]) == (40 + 8 + 10, 40 + 8 + 20)


# --- cap, active timeout, batches, flow ids -----------------------------------

def test_open_flow_cap_evicts_the_least_recently_active() -> None:
    a, b, c = (f"10.0.0.1:{p} > 10.0.0.2:6000" for p in (5001, 5002, 5003))
    table = FlowTable(FlowOptions(max_open_flows=2))
    ended = table.update(batch([udp(0, a), udp(1, b), udp(2, a), udp(3, c)]))
    df = flows_dataframe(ended)
    assert (list(df["orig_port"]), list(df["end_reason"])) == ([5002], ["evicted"])
    assert (table.evicted, table.open_flows) == (1, 2)


@pytest.mark.parametrize("cap", [1, 3, 100, 1000])
def test_open_flow_cap_of_any_size(cap: int) -> None:
    """The capped table is sized from the cap (not a power of two): every flow still ends
    once, all but the last ``cap`` evicted (an odd size once made the hash probe loop)."""
    n = 3000
    table = FlowTable(FlowOptions(max_open_flows=cap))
    segs = [udp(i * 1e-3, f"10.0.{i // 250}.{i % 250 + 1}:5000 > 10.1.0.1:53") for i in range(n)]
    ended = FlowRecords.concat([table.update(batch(segs[i:i + 700])) for i in range(0, n, 700)]
                               + [table.flush()])
    df = flows_dataframe(ended)
    assert len(df) == n and df["flow_id"].is_unique
    assert (table.evicted, int((df["end_reason"] == "evicted").sum())) == (n - cap, n - cap)
    assert len(table._conn) <= 2 * cap + 16  # slots follow the cap, not the flows


def test_active_timeout_cuts_long_flows() -> None:
    segs = [udp(t, "10.0.0.1:5000 > 10.0.0.2:6000") for t in (0, 5, 11)]
    df = flows(segs, FlowOptions(active_timeout=10))
    assert (list(df["orig_pkts"]), list(df["end_reason"])) == ([2, 1], ["active", "eof"])


def _mixed() -> list[Seg]:
    return sorted(_closed_flow() + [seg(t, C.replace("40000", "40001"), "S", seq=ISN_C)
                                    for t in (0.5, 1.5, 3.5, 7.5, 15.5)]
                  + [udp(t, "10.0.0.1:5000 > 10.0.0.2:6000") for t in (0, 30, 95, 200)]
                  + [icmp(2, "10.0.0.1", "10.0.0.2", 8)], key=lambda s: s.ts)


def test_batch_size_does_not_change_the_flows() -> None:
    whole = flows(_mixed())
    for size in (1, 2, 7):
        assert flows(_mixed(), size=size).equals(whole)


def test_flow_ids_per_packet_and_rows_in_no_flow() -> None:
    pb = batch([udp(0, "10.0.0.1:5000 > 10.0.0.2:6000"), udp(1, "10.0.0.3:1 > 10.0.0.4:2"),
                udp(2, "10.0.0.2:6000 > 10.0.0.1:5000")])
    pb.status[1] = Status.NOT_IP
    table = FlowTable()
    table.update(pb)
    assert table.flow_ids.tolist() == [0, -1, 0]


def test_out_of_order_packets_do_not_move_time_back() -> None:
    segs = [udp(100, "10.0.0.1:5000 > 10.0.0.2:6000"), udp(50, "10.0.0.3:1 > 10.0.0.4:2"),
            udp(105, "10.0.0.3:1 > 10.0.0.4:2")]
    # The old packet's flow is due at 50 + 60 = 110, after the network time 105.
    df = flows(segs)
    assert sorted(df["orig_pkts"].tolist()) == [1, 2]


# --- options and the DataFrame ------------------------------------------------

@pytest.mark.parametrize(("kw", "text"), [
    ({"udp_inactivity": -1}, "udp_inactivity"), ({"tcp_close_delay": "5"}, "tcp_close_delay"),
    ({"max_open_flows": 0}, "max_open_flows"), ({"likely_server_tcp": {70000}}, "70000"),
    ({"active_timeout": 0}, "active_timeout"), ({"vlan_in_key": 1}, "vlan_in_key"),
    ({"tcp_session_timer": 0}, "tcp_session_timer"),  # a fuzz find: re-armed forever
])
def test_bad_options_are_named(kw: dict, text: str) -> None:
    with pytest.raises(OptionError, match=text):
        FlowOptions(**kw)


def test_bare_mode_ports() -> None:
    tcp, udp_ports = bare_mode_ports(["http", "dns"])
    assert 80 in tcp and 53 in tcp and 443 not in tcp
    assert {53, 4789, 3544} <= udp_ports and 443 not in udp_ports
    with pytest.raises(OptionError, match="nosuch"):
        bare_mode_ports(["nosuch"])
    assert len(FlowOptions().likely_server_tcp) == 49
    assert len(FlowOptions().likely_server_udp) == 24


def test_empty_frame_has_the_same_columns_and_dtypes() -> None:
    empty = flows_dataframe(FlowRecords.empty())
    full = flows(_mixed())
    assert list(empty.columns) == [c.name for c in FLOW_COLUMNS] == list(full.columns)
    assert [str(t) for t in empty.dtypes] == [str(t) for t in full.dtypes]
    assert [str(t) for t in full.dtypes] == [c.dtype for c in FLOW_COLUMNS]
    assert len(empty) == 0 and np.all(full["flow_id"].diff().dropna() != 0)


def test_expire_lets_time_pass_without_packets() -> None:
    """A live capture's clock: the lone SYN's attempt timer fires at 5 s, not before."""
    table = FlowTable()
    table.update(batch([seg(0, C, "S", seq=ISN_C)]))
    assert len(table.expire(4_999_999_999)) == 0
    ended = flows_dataframe(table.expire(5_000_000_000))
    assert ended[["conn_state", "end_reason"]].values.tolist() == [["S0", "idle"]]
    assert table.open_flows == 0 and len(table.expire(0)) == 0  # time never goes back


def _udp_frames(specs: list[tuple[str, int, str, int, int]], options: FlowOptions
                ) -> pd.DataFrame:
    """Flows of DNS-like UDP frames (src, sport, dst, dport, QR bit), built with scapy."""
    scapy = pytest.importorskip("scapy.all")
    from tracker.decode import decode
    from tracker.frames import FrameBatch

    frames = [bytes(scapy.Ether() / scapy.IP(src=s, dst=d) / scapy.UDP(sport=sp, dport=dp)
                    / scapy.DNS(id=1, qr=qr, qd=scapy.DNSQR(qname="example.org")))
              for s, sp, d, dp, qr in specs]
    fb = FrameBatch.from_frames(frames, ts_ns=[k * 10**6 for k in range(len(frames))])
    table = FlowTable(options)
    return flows_dataframe(FlowRecords.concat([table.update(decode(fb)), table.flush()]))


@pytest.mark.parametrize(("dst", "history", "orig"), [
    ("10.0.0.2", "D^", "10.0.0.2"),  # a response first, from the originator: flip
    ("224.0.0.251", "D", "10.0.0.1"),  # ... but never towards a multicast responder
])
def test_dns_response_first_flips(dst: str, history: str, orig: str) -> None:
    """mDNS 5353 <-> 5353 (both likely server ports, so no port flip): DNS.cc L86-92."""
    flow = _udp_frames([("10.0.0.1", 5353, dst, 5353, 1)], FlowOptions()).iloc[0]
    assert (flow["history"], flow["orig_addr"]) == (history, orig)


def test_dns_flip_needs_the_dns_analyzer() -> None:
    specs = [("10.0.0.1", 5353, "10.0.0.2", 5353, 1)]
    assert _udp_frames(specs, FlowOptions.zeek_bare()).iloc[0]["history"] == "D"
    assert _udp_frames(specs, FlowOptions.zeek_bare(["dns"])).iloc[0]["history"] == "D^"
    query_first = [("10.0.0.1", 5353, "10.0.0.2", 5353, 0), ("10.0.0.2", 5353, "10.0.0.1", 5353, 1)]
    assert _udp_frames(query_first, FlowOptions()).iloc[0]["history"] == "Dd"


def test_empty_batches_and_an_empty_table() -> None:
    from tracker.packets import PacketBatch

    table = FlowTable()
    assert len(table.update(PacketBatch.empty(0))) == 0 and len(table.flow_ids) == 0
    assert len(table.flush()) == 0 and len(table.expire(10**18)) == 0
