"""A light check on real captures: the outer IP header agrees with tshark.

One small trace per link type or encapsulation; for each frame, tshark's
``packets.tsv.gz`` (corpus/README.md) says whether it has an IPv4/IPv6 layer
and which addresses, length, VLAN and ports. The full per-field conformance
test lives in tests/conformance/.
"""

from __future__ import annotations

import csv
import gzip
import ipaddress
import warnings
from pathlib import Path

import numpy as np
import pytest

from tracker.decode import decode
from tracker.packets import PacketBatch, Status
from tracker.sources.files import open_capture

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"

TRACES = {
    "ndpi/BGP_redist": "Cisco HDLC, MPLS",
    "ndpi/BGP_Cisco_hdlc_slarp": "Cisco HDLC frames in LINKTYPE_PPP, SLARP",
    "ndpi/someip_sd_sample": "PPI",
    "ndpi/openwire": "BSD loopback (NULL), IPv6",
    "ndpi/ocs": "raw IP",
    "ndpi/hsrp2_ipv6": "VLAN, IPv6",
    "ndpi/sctp": "SCTP",
    "ndpi/gre": "VLAN, GRE (outer header only)",
    "ndpi/dns_fragmented": "IPv4 and IPv6 fragments",
    "zeek/q-in-q": "802.1ad QinQ",
    "zeek/vlan-mpls": "VLAN and MPLS",
    "zeek/linux-sll-irc-starttls": "Linux cooked capture",
    "zeek/wikipedia-default": "Ethernet with 802.2 LLC frames",
}


def _decoded(trace: Path) -> PacketBatch:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a capture cut at its end is fine here
        with open_capture(trace) as cap:
            return PacketBatch.concat([decode(batch) for batch in cap])


def _address(hi: np.uint64, lo: np.uint64) -> str:
    a = ipaddress.IPv6Address((int(hi) << 64) | int(lo))
    return str(a.ipv4_mapped or a)


def _mismatches(pb: PacketBatch, tshark: list[dict[str, str]]) -> list[tuple]:
    """(frame, what, ours, tshark) for each disagreement on the outer IP header."""
    bad: list[tuple] = []
    for i, r in enumerate(tshark):
        first = {k: v.split(",")[0] for k, v in r.items()}
        layers = r["frame.protocols"].split(":")
        net = next((p for p in layers if p in ("ip", "ipv6")), None)
        status = Status(int(pb.status[i]))
        if net is None:
            if status in (Status.OK, Status.FRAGMENT):
                bad.append((i, "IP where tshark has none", status, r["frame.protocols"]))
            continue
        if status not in (Status.OK, Status.FRAGMENT):
            bad.append((i, "no IP", status.name, r["frame.protocols"]))
            continue
        v6 = net == "ipv6"
        want = {"src": first["ipv6.src" if v6 else "ip.src"],
                "ip_len": int(first["ipv6.plen"]) + 40 if v6 else int(first["ip.len"])}
        got = {"src": _address(pb.src_hi[i], pb.src_lo[i]), "ip_len": int(pb.ip_len[i])}
        if first["vlan.id"]:
            want["vlan"], got["vlan"] = int(first["vlan.id"]), int(pb.vlan[i])
        after = layers[layers.index(net) + 1:][:1]
        if status == Status.OK and after in (["tcp"], ["udp"]):
            want["port"], got["port"] = int(first[f"{after[0]}.srcport"]), int(pb.src_port[i])
        bad += [(i, k, got[k], want[k]) for k in want if got[k] != want[k]]
    return bad


@pytest.mark.corpus
@pytest.mark.parametrize("name", sorted(TRACES))
def test_outer_ip_header_matches_tshark(name: str) -> None:
    folder = CORPUS / name
    if not folder.is_dir():
        pytest.skip(f"the shared corpus is absent: expected {folder}")
    pb = _decoded(next(folder.glob("trace.pcap*")))
    with gzip.open(folder / "packets.tsv.gz", "rt", newline="") as f:
        tshark = list(csv.DictReader(f, delimiter="\t"))
    assert len(pb) == len(tshark)
    assert (pb.record == np.arange(len(pb))).all()
    bad = _mismatches(pb, tshark)
    assert not bad, f"{TRACES[name]}: {len(bad)} mismatches, first: {bad[:5]}"
