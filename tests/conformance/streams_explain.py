"""Why a socket pair's totals differ from tshark's or NFStream's, from the frames.

For a pair that differs, streams_frames tells which frames each tool counts in
it. The evidence is the frames that one tool counts in the pair and the other
does not, plus the fragments and tunnel frames that both count (their lengths
differ per tool). Each evidence frame gets one reason from ``REASONS`` by its
own fields (``frame_reasons``); a pair's reason is its evidence's reasons
joined by "+", and "unexplained" when a frame fits no reason or when the pair
differs without any evidence frame.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conformance.streams_compare import (
    MEASURES,
    NFSTREAM,
    TSHARK,
    Tool,
    canonical,
    load_flows,
    merge,
    nfstream,
    ours,
    proto_numbers,
    tshark,
)
from tests.conformance.streams_frames import frames, key_text, read_tsv, stack_table

# Why the tools count a frame differently; each is a documented design choice of a tool.
REASONS: dict[str, str] = {
    "unaccounted": "beside another reason: the frames that reason names do not account for "
    "the pair's whole packet difference (a frame counted in two of our flows, a UDP "
    "tunnel's outer and inner ones, counts once in the frame evidence)",
    "tso-zero-length": "IPv4 total length 0 (TCP segmentation offload capture): Zeek with "
    "-C (the mode our default matches) and we count the packet with the header's 0 IP bytes "
    "(ZEEK-FACTS 9.2, ConnSize.cc L97-104); tshark takes the length from the frame; "
    "NFStream drops the packet",
    "ip-fragments": "IP fragments: we count a reassembled datagram as Zeek does (one packet, "
    "the reassembled IP length, every fragment's frame bytes; nothing for a datagram that "
    "never completes or whose first fragment is malformed); tshark counts it with the "
    "completing frame's lengths only; NFStream does not reassemble (a first fragment alone "
    "with its own lengths, ports 0 without a whole transport header, later fragments dropped)",
    "bad-tcp-data-offset": "TCP data offset below 5 words or past the IP payload: Zeek does "
    "not count the packet (ZEEK-FACTS 4.1, TCP.cc L86-90) and neither do we; tshark and "
    "NFStream do",
    "ip-len-beyond-frame": "IP total length longer than the frame (not a snaplen cut): Zeek "
    "drops the packet (ZEEK-FACTS 4.1, IP.cc L81-84) and so do we; tshark and NFStream count it",
    "icmp-error-quote": "an ICMP error quoting a TCP/UDP header: tshark counts it in the "
    "quoted stream; Zeek, NFStream and we count it in an ICMP flow",
    "tunnel": "a tunnelled packet: for IP-in-IP and GRE we count the inner flow as Zeek does "
    "(and none for a GRE packet whose payload is not IP, which NFStream counts as protocol "
    "47); for VXLAN, Geneve, GTP-U, Teredo and AYIYA both the outer UDP flow and the inner "
    "one, as Zeek does, where tshark counts the frame in one stream and NFStream in the "
    "inner flow (GTP, Teredo) or the outer one (VXLAN); CAPWAP's outer one only (Zeek does "
    "not open it); the tools' inner lengths also differ",
    "qinq-inner-vlan": "802.1ad QinQ: NFStream keys on the inner VLAN tag, we report the outer "
    "one (SEMANTICS.md 1, as Zeek's vlan column)",
    "fabricpath": "Cisco FabricPath: the capture holds each packet bare and wrapped; Zeek, "
    "tshark and we count both copies, NFStream does not decode the wrapped one (it reads "
    "some as IPv4 protocol 80 between made-up addresses)",
    "mpls-pw-control-word": "Ethernet pseudowire with a control word under MPLS: tshark finds "
    "it heuristically; Zeek and we decode only IP under MPLS",
    "nfstream-reads-non-ip": "NFStream reads an IP header where tshark and we find none: a "
    "fuzzed DLT_NULL frame with a bogus address family, or 802.11 frames that are not IP in "
    "a CAPWAP data tunnel (its flows of protocol 0 between random addresses)",
    "nfstream-link-type": "a link type NFStream cannot decode (PPI, 802.15.4): it reports no "
    "flows",
    "analyzer-role-flip": "Zeek's DNS or NTP analyzer flips a UDP flow's roles in the middle "
    "of a packet, and Zeek's ConnSize then counts that packet for the other side (ZEEK-FACTS "
    "9.3); so do we (history D^): the pair's totals agree, one packet changes direction",
}
NFSTREAM_LINKS = ("ppi", "wpan-nofcs")  # corpus/README.md caveat 10: 0 flows there
_BOTH_COUNTED = ("ip-fragments", "tunnel", "tso-zero-length")  # both count, other lengths
_NONE = np.zeros(0, np.int64)


def _int(col: pd.Series, fill: int) -> np.ndarray:
    return col.astype("Int64").fillna(fill).to_numpy(np.int64)


def frame_reasons(f: pd.DataFrame) -> np.ndarray:
    """The REASONS name of each frame from its own fields, "unexplained" when none fits."""
    status = f["status"].to_numpy()
    malformed = status == "MALFORMED"
    fragment_fields = (_int(f["frag_offset"], 0) > 0) | \
        f["more_fragments"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    protocols = f["protocols"].fillna("")
    rules = [
        ("tso-zero-length", f["tso"].to_numpy(dtype=bool)),
        ("ip-fragments", (status == "FRAGMENT") | (malformed & fragment_fields)),
        ("bad-tcp-data-offset", malformed & (_int(f["proto"], -1) == 6)),
        ("ip-len-beyond-frame", (status == "TRUNCATED")
         & (f["caplen"].to_numpy() == f["wire_len"].to_numpy())),
        ("tunnel", (f["ip_layers"].fillna(0) >= 2) | f["tunnel"].fillna(False).astype(bool)
         | np.isin(_int(f["proto"], -1), (4, 41, 47))),
        ("icmp-error-quote", f["icmp_quote"].fillna(False).astype(bool)),
        ("qinq-inner-vlan", f["vlans"].fillna(0) >= 2),
        ("fabricpath", protocols.str.contains(":cfp:", regex=False)),
        ("mpls-pw-control-word", protocols.str.contains("pwethcw", regex=False)),
    ]
    return np.select([np.asarray(c, dtype=bool) for _, c in rules], [n for n, _ in rules],
                     default="unexplained")


def _members(keys: pd.Series) -> dict[str, np.ndarray]:
    """Pair key -> positions of the frames counted in it."""
    known = keys.notna().to_numpy()
    positions = np.flatnonzero(known)
    groups = pd.Series(positions).groupby(keys.to_numpy()[known].astype(str)).indices
    return {k: positions[v] for k, v in groups.items()}


@lru_cache(maxsize=1)
def _frame_ms(trace: Path) -> np.ndarray:
    """Each frame's time in whole milliseconds, from tshark's exact text."""
    sec, _, frac = read_tsv(trace)["frame.time_epoch"].str.partition(".").values.T
    # The fraction is nanoseconds, 9 digits, or more when a file stores a value >= 1e9.
    ns = pd.Series(frac).str.ljust(9, "0").astype(np.int64).to_numpy()
    return np.asarray(sec.astype(np.int64) * 1000 + ns // 1_000_000)


def _misread(trace: Path, first_ms: int) -> list[str]:
    """Reasons of a flow that only NFStream reports, from the frames at its first packet's
    millisecond: frames where tshark finds no IP but NFStream reads one (a DLT_NULL frame
    with a bogus address family, a tunnel payload that is not IP as CAPWAP's 802.11),
    FabricPath-wrapped frames, which NFStream reads as IPv4 at the wrong offset, or a GRE
    packet whose payload is not IP (no flow for Zeek and us, a protocol-47 one for it)."""
    t = read_tsv(trace)
    protocols = t["frame.protocols"][np.abs(_frame_ms(trace) - first_ms) <= 1]
    stacks = stack_table(protocols)
    found = []
    if protocols.str.contains(":cfp:", regex=False).any():
        found.append("fabricpath")
    if (protocols == "null:data").any() or (stacks["tunnel"] & (stacks["ip_layers"] < 2)).any():
        found.append("nfstream-reads-non-ip")
    if protocols.str.contains(":gre", regex=False).any() and not found:
        found.append("tunnel")  # a GRE packet with no IP inside: NFStream's protocol-47 flow
    return found


@lru_cache(maxsize=4)
def _flipped_mid_packet(trace: Path, vlan_in_key: bool) -> frozenset[str]:
    """Pair keys of our UDP flows whose roles an analyzer flipped after a first packet
    (history D^): that packet counts for the other side, as in Zeek."""
    df = load_flows(trace, vlan_in_key)
    df = df[(df["proto"] == "udp") & df["history"].astype(str).str.startswith("D^")]
    vlan = df["vlan"].astype("Int64").fillna(0).to_numpy(np.int64) if vlan_in_key \
        else np.zeros(len(df), np.int64)
    zero = {m: np.zeros(len(df), np.int64) for m in MEASURES}
    k = canonical(np.full(len(df), 17), df["orig_addr"], df["orig_port"], df["resp_addr"],
                  df["resp_port"], vlan, zero, zero, grouped=False)
    return frozenset(key_text(k))


@lru_cache(maxsize=4)
def _tunnel_flows(trace: Path, vlan_in_key: bool) -> frozenset[str]:
    """Pair keys of our flows that are a UDP tunnel's inside or outside (a tunnel parent
    or a flow with one): a frame counts in both, which the frame evidence cannot show."""
    df = load_flows(trace, vlan_in_key)
    parents = df["tunnel_parents"].map(len).to_numpy() > 0
    ids = {int(i) for ps in df.loc[parents, "tunnel_parents"] for i in ps}
    df = df[parents | df["flow_id"].isin(ids).to_numpy()]
    vlan = df["vlan"].astype("Int64").fillna(0).to_numpy(np.int64) if vlan_in_key \
        else np.zeros(len(df), np.int64)
    zero = {m: np.zeros(len(df), np.int64) for m in MEASURES}
    k = canonical(proto_numbers(df["proto"]), df["orig_addr"], df["orig_port"],
                  df["resp_addr"], df["resp_port"], vlan, zero, zero, grouped=False)
    return frozenset(key_text(k))


def explain(trace: Path, tool: Tool, diff: pd.DataFrame) -> list[str]:
    """One reason per differing pair (rows of streams_compare.merge), in row order."""
    if diff.empty:
        return []
    addresses = set(diff["lo_addr"]) | set(diff["hi_addr"])
    f = frames(trace, tool, addresses)
    reason = frame_reasons(f)
    both_counted = np.isin(reason, _BOTH_COUNTED)
    ours, theirs = _members(f["ours"]), _members(f["theirs"])
    linktype = json.loads((trace.parent / "info.json").read_text())["linktype"]
    out = []
    first = diff["first_ms"] if "first_ms" in diff else pd.Series(0, index=diff.index)
    gap = (diff["tot_pkts_t"] - diff["tot_pkts"]).to_numpy()
    for i, (key, side) in enumerate(zip(key_text(diff), diff["side"], strict=True)):
        mine, their = ours.get(key, _NONE), theirs.get(key, _NONE)
        both = np.intersect1d(mine, their)
        evidence = np.concatenate([np.setxor1d(mine, their), both[both_counted[both]]])
        reasons = sorted(set(reason[evidence]))
        # Without fragments one frame is one packet for every tool: the evidence must
        # account for the whole packet difference.
        if "ip-fragments" not in reasons and evidence.size and \
                len(np.setdiff1d(their, mine)) - len(np.setdiff1d(mine, their)) != gap[i]:
            reasons.append("unaccounted")
        if key in _tunnel_flows(trace, tool.vlan_in_key) and (
                not reasons or "unaccounted" in reasons):
            reasons = ["tunnel"]
        turned = not reasons and side == "both" and "tot_" not in diff["diff"].iloc[i]
        if turned and key in _flipped_mid_packet(trace, tool.vlan_in_key):
            reasons = ["analyzer-role-flip"]
        if not reasons and tool is NFSTREAM:
            if side == "ours_only" and linktype in NFSTREAM_LINKS:
                reasons = ["nfstream-link-type"]
            elif side == "theirs_only":
                reasons = _misread(trace, int(first.iloc[i]))
        out.append("+".join(reasons) or "unexplained")
    return out


@dataclass(frozen=True)
class PairResult:
    """One trace against one tool: pairs compared, pairs agreeing, reasons of the others."""

    pairs: int
    agree: int
    reasons: dict[str, int]  # reason -> socket pairs
    differing: pd.DataFrame  # the differing pairs (streams_compare.merge rows) and "reason"


@cache
def compare_trace(trace: Path, tool: Tool) -> PairResult:
    """Sum both sides per socket pair, compare, and explain every pair that differs."""
    theirs = tshark(trace) if tool is TSHARK else nfstream(trace)
    merged = merge(ours(trace, tool), theirs)
    differing = merged[(merged["diff"] != "") | (merged["side"] != "both")].copy()
    differing["reason"] = explain(trace, tool, differing)
    return PairResult(len(merged), len(merged) - len(differing),
                      dict(Counter(differing["reason"])), differing)


def main() -> None:
    """Print each trace's differing pairs by reason, and the agreement rate per tool."""
    corpus = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
    for tool in (TSHARK, NFSTREAM):
        pairs = agree = 0
        for trace in sorted(corpus.glob("*/*/trace.pcap*")):
            r = compare_trace(trace, tool)
            pairs, agree = pairs + r.pairs, agree + r.agree
            if r.reasons:
                print(f"{tool.name} {trace.parent.relative_to(corpus)}: {r.pairs} pairs, "
                      f"{r.reasons}")
        print(f"{tool.name}: {agree} of {pairs} socket pairs agree ({100 * agree / pairs:.2f} %)")


if __name__ == "__main__":
    main()
