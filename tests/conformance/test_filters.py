"""tcpdump filters (tracker/decode/bpf.py) keep exactly the packets tcpdump keeps.

For every expression below and every trace of many link types in the shared corpus, the
frames our compiled BPF loop keeps equal, packet for packet (their bytes, in order), the
frames ``tcpdump -r TRACE -w OUT EXPR`` writes. An expression that libpcap cannot compile
for a trace's link type must fail for both.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from tests.conftest import CORPUS, need_corpus
from tracker.decode.bpf import BpfFilter
from tracker.errors import OptionError, TrackerWarning
from tracker.sources.files import open_capture

EXPRESSIONS = (
    "tcp", "udp", "icmp", "ip", "ip6", "arp", "not ip", "icmp6",
    "tcp port 80", "port 53", "udp and port 53", "src port 80 or dst port 80",
    "portrange 1-1023", "tcp portrange 1024-65535",
    "net 192.168.0.0/16", "net 10.0.0.0/8", "src net 192.168.0.0/16", "dst net 172.16.0.0/12",
    "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0", "tcp[tcpflags] & tcp-rst != 0",
    "tcp[tcpflags] == tcp-syn", "tcp[tcpflags] & tcp-ack != 0 and tcp[tcpflags] & tcp-push != 0",
    "vlan", "vlan and tcp", "ip6 and tcp", "ip6 and udp port 53", "not tcp and not udp",
    "len > 100", "less 60", "greater 1000", "ip[6:2] & 0x3fff != 0",
    "ip proto 47 or ip proto 50", "ip multicast",
    "tcp and (port 80 or port 443) and not src net 10.0.0.0/8",
    "ether proto 0x0800", "mpls", "udp[8:2] > 0x1000 and udp",
)
# Traces of many link types: Ethernet (VLAN, QinQ, MPLS, fragments, IPv6), Linux cooked,
# BSD loopback, raw IP, PPP, Cisco HDLC, PPI.
TRACES = (
    "zeek/wikipedia-default", "zeek/vlan-mpls", "zeek/q-in-q", "zeek/ipv4-frag-syn",
    "ndpi/dns_fragmented", "misc/scapy-ikev2-nat-t", "zeek/pcapng-multi-interface",
    "ndpi/KakaoTalk_chat", "ndpi/dns2tcp_tunnel", "ndpi/http2", "ndpi/rtsp",
    "nfstream/KakaoTalk_talk", "ndpi/nats", "ndpi/opc-ua", "ndpi/openwire", "nfstream/rdp",
    "nfstream/selfsigned", "ndpi/hls", "ndpi/ocs", "ndpi/psiphon3", "ndpi/BGP_redist",
    "ndpi/someip_sd_sample", "ndpi/BGP_Cisco_hdlc_slarp", "ndpi/dlt_ppp",
)


def _frames(path: Path) -> list[tuple[int, list[bytes]]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrackerWarning)
        with open_capture(path) as reader:
            return [(b.linktype, b) for b in reader]  # type: ignore[misc]


def _bytes(batch, keep=None) -> list[bytes]:  # type: ignore[no-untyped-def]
    return [batch.data[batch.start[i]:batch.start[i] + batch.caplen[i]].tobytes()
            for i in range(len(batch)) if keep is None or keep[i]]


def _tcpdump(path: Path, expression: str, out: Path) -> list[bytes] | None:
    """The frames tcpdump keeps, or None when it refuses the expression."""
    r = subprocess.run(["tcpdump", "-r", str(path), "-w", str(out), expression],
                       capture_output=True, check=False, timeout=60)
    if r.returncode != 0:
        return None
    return [f for _, b in _frames(out) for f in _bytes(b)]


@pytest.mark.corpus
@pytest.mark.parametrize("trace", TRACES)
def test_filters_keep_what_tcpdump_keeps(trace: str, tmp_path: Path) -> None:
    need_corpus()
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed (./run setup installs it)")
    path = next((CORPUS / trace).glob("trace.pcap*"))
    batches = _frames(path)
    checked = 0
    for expression in EXPRESSIONS:
        theirs = _tcpdump(path, expression, tmp_path / "out.pcap")
        try:
            f = BpfFilter(expression)
            ours = [x for _, b in batches for x in _bytes(b, f.matches(b))]
        except OptionError:
            ours = None
        assert (ours is None) == (theirs is None), (expression, "compiles for one side only")
        if ours is not None:
            assert ours == theirs, (expression, len(ours), len(theirs))  # type: ignore[arg-type]
            checked += 1
    assert checked >= 25
