"""Per-frame comparison of read_packets with tshark's fields (packets.tsv.gz).

tshark decodes every layer; this tracker decodes the outer IP header and the
transport header right after it. So for each frame that tshark decodes as
IPv4 or IPv6 we compare the OUTER header: the first value of every
comma-separated tshark field (outer first). Ports and TCP flags are compared
only when TCP or UDP directly follows the outer IP header and the packet is not
an IP fragment (tshark shows the reassembled transport on the completing
fragment; tunnels and ICMP errors carry inner headers).

Run as a script to print the match rate per trace and in all:
    .venv/bin/python tests/conformance/tshark_packets.py
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

FIELDS = ("ts", "src_addr", "dst_addr", "src_port", "dst_port", "proto", "ip_len", "tcp_flags", "vlan")
_IPV6_EXT = {"ipv6.hopopts", "ipv6.routing", "ipv6.dstopts", "ipv6.fraghdr", "ah"}
_ENCAP_TOKENS = (":vlan:", ":mpls:", ":ieee8021ah:")
_ENCAP_BOUND = 8  # encap.py's MAX_VLAN_TAGS, the smallest of its bounds
_IPV6_EXT_NUMBERS = (0, 43, 44, 51, 60)  # hop-by-hop, routing, fragment, AH, destination
_PROTO_NUMBER = {"tcp": 6, "udp": 17, "icmpv6": 58, "icmp": 1}
# tshark's names of layers that Zeek's packet analyzers do not decode (explain)
_ZEEK_SKIPS = {"fr", "pktap", "ipoib", "arcnet", "juniper", "wpan", "ipnet", "macsec",
               "avsp", "nsh"}


@dataclass
class TraceResult:
    frames: int
    ip_frames: int
    rows_equal: bool
    mismatches: dict[str, list[int]] = field(default_factory=dict)  # field -> frame numbers
    reasons: dict[int, str] = field(default_factory=dict)  # frame -> why it differs, if known

    @property
    def compared(self) -> int:
        return self.ip_frames * len(FIELDS)

    @property
    def mismatched(self) -> int:
        return sum(len(v) for v in self.mismatches.values())


def _first(col: pd.Series) -> pd.Series:
    return col.fillna("").astype(str).str.split(",").str[0]


def _ns(text: pd.Series) -> np.ndarray:
    """frame.time_epoch 'S.FFFFFFFFF' to int ns exactly (no float rounding)."""
    parts = text.str.split(".", n=1, expand=True)
    # Seconds past int64 ns (a few corrupt files) wrap here; explain() uses ts_sec for them.
    sec = parts[0].astype("int64").to_numpy()
    frac = parts[1].fillna("0").str.ljust(9, "0").str[:9].astype("int64").to_numpy()
    return sec * 1_000_000_000 + frac


def expected_frame(tsv: Path) -> pd.DataFrame:
    """tshark's per-frame outer-header view in our column names (IP frames only)."""
    t = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    tokens = t["frame.protocols"].str.split(":")
    # tshark's IPv4 dissector hands a header of version 6 to IPv6 ("ip:ipv6", no IPv4
    # address): that header is the outer IPv6 one (an IPv6-in-IPv4 tunnel has addresses).
    bogus_v4 = (_first(t["ip.src"]) == "").to_numpy()
    tokens = pd.Series([_without_bogus_ipv4(tok) if bogus else tok
                        for tok, bogus in zip(tokens, bogus_v4)], index=tokens.index)
    outer = tokens.map(_outer_layer)
    ip = outer.map(lambda o: o[0]).to_numpy()
    keep = ip != ""
    if not keep.any():
        return pd.DataFrame(columns=["frame", *FIELDS])
    t, outer, ip = t[keep], outer[keep], ip[keep]
    v4 = ip == "ip"
    nxt = outer.map(lambda o: o[1]).to_numpy()
    frag = ((_first(t["ip.flags.mf"]) == "1") | (~_first(t["ip.frag_offset"]).isin(["", "0"]))) & v4
    frag |= outer.map(lambda o: o[2]).to_numpy()
    transport = np.isin(nxt, ["tcp", "udp"]) & ~frag.to_numpy()
    out = pd.DataFrame({"frame": t["frame.number"].astype(int).to_numpy()})
    out["ts"] = _ns(t["frame.time_epoch"])
    out["ts_sec"] = t["frame.time_epoch"].str.split(".").str[0].astype(float).to_numpy()
    out["src_addr"] = np.where(v4, _first(t["ip.src"]), _first(t["ipv6.src"]))
    out["dst_addr"] = np.where(v4, _first(t["ip.dst"]), _first(t["ipv6.dst"]))
    v6_proto = pd.Series(nxt).map(_PROTO_NUMBER).fillna(-1).astype(int).to_numpy()
    v6_plain = (_first(t["ipv6.nxt"]) != "").to_numpy() & (outer.map(lambda o: not o[3]).to_numpy())
    v6_proto = np.where(v6_plain, pd.to_numeric(_first(t["ipv6.nxt"]), errors="coerce").fillna(-1), v6_proto)
    out["proto"] = np.where(v4, pd.to_numeric(_first(t["ip.proto"]), errors="coerce").fillna(-1), v6_proto).astype(int)
    v6_len = pd.to_numeric(_first(t["ipv6.plen"]), errors="coerce").fillna(-41) + 40
    out["ip_len"] = np.where(v4, pd.to_numeric(_first(t["ip.len"]), errors="coerce").fillna(-1), v6_len).astype(int)
    is_tcp = nxt == "tcp"
    sport = np.where(is_tcp, _first(t["tcp.srcport"]), _first(t["udp.srcport"]))
    dport = np.where(is_tcp, _first(t["tcp.dstport"]), _first(t["udp.dstport"]))
    out["src_port"] = np.where(transport, pd.to_numeric(pd.Series(sport), errors="coerce").fillna(-1), -2).astype(int)
    out["dst_port"] = np.where(transport, pd.to_numeric(pd.Series(dport), errors="coerce").fillna(-1), -2).astype(int)
    flags = _first(t["tcp.flags"]).map(lambda s: int(s, 16) & 0x1FF if s else -1).to_numpy()
    out["tcp_flags"] = np.where(transport & is_tcp, flags, -2)
    # A VLAN tag after the outer IP header sits in a payload (sFlow samples, VXLAN): not outer.
    outer_vlan = tokens[keep].map(lambda toks: "vlan" in toks[: toks.index(_outer_layer(toks)[0])])
    vlan = pd.to_numeric(_first(t["vlan.id"]), errors="coerce").fillna(-1).astype(int).to_numpy()
    out["vlan"] = np.where(outer_vlan.to_numpy(), vlan, -1)
    out["protocols"] = t["frame.protocols"].to_numpy()
    return out


def _without_bogus_ipv4(tokens: list[str]) -> list[str]:
    """The layers without an "ip" layer that only led on to "ipv6"."""
    for i, tok in enumerate(tokens[:-1]):
        if tok == "ip" and tokens[i + 1] == "ipv6":
            return tokens[:i] + tokens[i + 1:]
    return tokens


def _outer_layer(tokens: list[str]) -> tuple[str, str, bool, bool]:
    """(outer IP layer, layer after it, IPv6 fragment header seen, IPv6 ext headers seen)."""
    for i, tok in enumerate(tokens):
        if tok in ("ip", "ipv6"):
            rest = tokens[i + 1:]
            j = 0
            while j < len(rest) and rest[j] in _IPV6_EXT:
                j += 1
            nxt = rest[j] if j < len(rest) else ""
            return tok, nxt, "ipv6.fraghdr" in rest[:j], j > 0
    return "", "", False, False


def actual_frame(df: pd.DataFrame, frames: np.ndarray) -> pd.DataFrame:
    """Our read_packets rows for the given 1-based frames, in the same shape."""
    rows = df.set_index("frame").loc[frames]
    out = pd.DataFrame({"frame": frames})
    out["ts"] = rows["ts"].dt.tz_localize(None).to_numpy().view(np.int64)
    out["src_addr"] = rows["src_addr"].astype(object).fillna("").to_numpy()
    out["dst_addr"] = rows["dst_addr"].astype(object).fillna("").to_numpy()
    for name in ("proto", "ip_len", "src_port", "dst_port", "tcp_flags", "vlan"):
        out[name] = rows[name].astype("Int64").fillna(-1).to_numpy(dtype=np.int64)
    return out


def compare_trace(trace: Path) -> TraceResult:
    import tracker

    df = tracker.read_packets(trace)
    tsv = trace.parent / "packets.tsv.gz"
    n_tshark = sum(1 for _ in pd.read_csv(tsv, sep="\t", usecols=[0], dtype=str, quoting=3).itertuples())
    exp = expected_frame(tsv)
    result = TraceResult(frames=len(df), ip_frames=len(exp), rows_equal=len(df) == n_tshark)
    if not result.rows_equal or exp.empty:
        return result
    act = actual_frame(df, exp["frame"].to_numpy())
    rows = df.set_index("frame")
    for name in FIELDS:
        e, a = exp[name].to_numpy(), act[name].to_numpy()
        # -2: not comparable (see the module docstring); proto -1: tshark did not name the
        # transport after IPv6 extension headers (a fragment), so there is nothing to compare.
        skip = (e == -2) if name in ("src_port", "dst_port", "tcp_flags") else np.zeros(len(e), bool)
        if name == "proto":
            skip = e == -1
        bad = (e != a) & ~skip
        if bad.any():
            result.mismatches[name] = exp["frame"].to_numpy()[bad].tolist()
    for frame in sorted({f for frames in result.mismatches.values() for f in frames}):
        row = exp.loc[exp["frame"] == frame].iloc[0]
        result.reasons[frame] = explain(row, rows.loc[frame])
    return result


def explain(tshark: pd.Series, ours: pd.Series) -> str:
    """Why a frame differs from tshark by design, or "unexplained".

    - mpls-pw-control-word: an Ethernet pseudowire (with control word) under an
      MPLS stack; tshark finds it heuristically, Zeek decodes only IPv4/IPv6
      directly under the stack, and so do we (NOT_IP).
    - nat-timestamp: a timestamp after 2262 does not fit int64 ns and becomes NaT
      (SEMANTICS.md section 7).
    - bad-tcp-data-offset: a TCP data offset below 5 words; tshark stops and shows
      no flags, we keep the flags byte and mark the row MALFORMED.
    - bogus-ipv4-header-length: an IPv4 header length below 20 bytes; tshark stops
      after the version and the length, we keep the fixed header's fields (addresses,
      total length) and mark the row MALFORMED, as for a bad TCP data offset.
    - pcap-fraction-past-a-second: a classic pcap record whose microseconds (or
      nanoseconds) field holds a second or more; libpcap reads it unsigned and adds it
      (so does Zeek, and so do we), tshark reads it signed and shows a negative time.
    - fabricpath-fcs: tshark takes the last 4 bytes of a Cisco FabricPath frame for its
      FCS, and an IP header that ends there is cut for it; Zeek skips the FabricPath
      header only and reads the inner frame to its end, and so do we.
    - ipv4-options-cut: an IPv4 header whose options were not all captured; tshark stops
      before the destination address, we keep the fixed header's fields (TRUNCATED).
    - encapsulation-past-bound: more VLAN tags, MPLS labels or PBB headers than the
      decoder walks (encap.py; Zeek stops at 25 analyzers a packet); tshark walks on.
    - ipv6-cut-before-transport: an IPv6 header cut before the transport header, whose
      Next Header names an extension header; tshark shows that number, our ``proto`` is
      the transport's and stays <NA>.
    - tso-total-length-0: an IPv4 total length of 0 (written before TCP segmentation
      offload); tshark shows the length it takes from the frame, we keep the header's 0,
      which is what Zeek adds to ip_bytes (ZEEK-FACTS 9.2).
    - layer-zeek-does-not-decode: the IP packet is behind a link type or an ethertype
      that Zeek's packet analyzers do not decode (Frame Relay, PKTAP, IP over
      InfiniBand, ARCnet, Juniper, 802.15.4, Solaris ipnet; MACsec, Arista's
      timestamp header, NSH: not in scripts/base/packet-protocols), and neither do we
      (UNSUPPORTED_LINK, NOT_IP).
    - ipv6-payload-length-0: an IPv6 payload length of 0 (a jumbogram, BIG TCP); tshark
      reads the Jumbo Payload option or the frame, we read it as Zeek does (ZEEK-FACTS
      9.4): ip_len 40, and a TCP or UDP header there MALFORMED.
    """
    version = int(ours["ip_version"]) if pd.notna(ours["ip_version"]) else 0
    if "pwethcw" in tshark["protocols"]:
        return "mpls-pw-control-word"
    if tshark["ts_sec"] > np.iinfo(np.int64).max / 1e9 and pd.isna(ours["ts"]):
        return "nat-timestamp"
    if ours["status"] == "MALFORMED" and tshark["tcp_flags"] == -1:
        return "bad-tcp-data-offset"
    if ours["status"] == "TRUNCATED" and version == 4 and tshark["dst_addr"] == "" \
            and pd.notna(ours["dst_addr"]):
        return "ipv4-options-cut"
    if ours["status"] == "MALFORMED" and version == 0 and \
            sum(tshark["protocols"].count(t) for t in _ENCAP_TOKENS) > _ENCAP_BOUND:
        return "encapsulation-past-bound"
    if ours["status"] == "TRUNCATED" and pd.isna(ours["proto"]) and \
            tshark["proto"] in _IPV6_EXT_NUMBERS:
        return "ipv6-cut-before-transport"
    if ":cfp:" in tshark["protocols"] and (tshark["dst_addr"] == "" or tshark["src_addr"] == ""):
        return "fabricpath-fcs"
    if tshark["ts_sec"] < 0 and not pd.isna(ours["ts"]) and ours["ts"].year >= 1970:
        return "pcap-fraction-past-a-second"
    if ours["status"] == "MALFORMED" and version == 4 and tshark["src_addr"] == "":
        return "bogus-ipv4-header-length"
    if pd.notna(ours["ip_len"]) and ours["ip_len"] == 0 and tshark["ip_len"] > 0:
        return "tso-total-length-0"
    if ours["status"] in ("UNSUPPORTED_LINK", "NOT_IP") and \
            _ZEEK_SKIPS.intersection(tshark["protocols"].split(":")):
        return "layer-zeek-does-not-decode"
    if ours["status"] == "MALFORMED" and version == 6 and pd.notna(ours["ip_len"]) \
            and ours["ip_len"] == 40:
        return "ipv6-payload-length-0"
    return "unexplained"


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import corpus_traces

    total = bad = 0
    for trace in corpus_traces():
        r = compare_trace(trace)
        total += r.compared
        bad += r.mismatched
        status = "" if r.rows_equal else " ROW COUNT DIFFERS"
        detail = {k: (len(v), v[:5]) for k, v in r.mismatches.items()}
        if r.reasons:
            detail["reasons"] = pd.Series(r.reasons).value_counts().to_dict()
        if detail or status:
            print(f"{trace.parent.relative_to(trace.parents[2])}: {r.ip_frames} IP frames{status} {detail}")
    print(f"fields compared: {total}, equal: {total - bad} ({100 * (total - bad) / max(total, 1):.3f} %)")


if __name__ == "__main__":
    main()
