"""Frame by frame: which socket pair each tool counts a frame in.

- ours: the pair of the frame's flow (``flow_id`` of read_packets, same options
  as read_flows); None when we count the frame in no flow;
- tshark: the pair of the ``tcp.stream`` / ``udp.stream`` of the frame's
  innermost TCP or UDP header, which is how tshark_streams.csv counts frames
  (an ICMP error goes to the stream of the header it quotes);
- NFStream: it writes nothing per packet, so its pair is approximated from
  tshark's dissection and our header fields as NFStream builds its key with
  ``decode_tunnels=True``: the innermost IP header and its ports (0 for ICMP
  and other protocols), the innermost VLAN tag, a first fragment with ports
  only when it holds the whole transport header, no later fragments, no
  FabricPath-wrapped frames (which it does not decode) and no tunnel frames
  whose payload is not IP (it decodes the tunnel and finds no inner flow).

Only the frames that carry one of the given addresses are worked out (the rest
cannot belong to the pairs being explained), which keeps a 150k-frame capture
at a second.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conformance.streams_compare import (
    NFSTREAM,
    PORTLESS,
    PROTO_NUMBER,
    Tool,
    canonical,
    load_flows,
    load_packets,
    proto_numbers,
)

IPV6_EXT = ("ipv6.hopopts", "ipv6.routing", "ipv6.dstopts", "ipv6.fraghdr", "ah")
TUNNEL_TOKENS = ("gre", "vxlan", "gtp", "capwap.data", "teredo")  # tshark protocol names
_ICMP_QUOTE = re.compile(r"(?:^|:)icmp(?:v6)?:(?:ip|ipv6)(?::|$)")
_ADDRESS_COLUMNS = ("ip.src", "ip.dst", "ipv6.src", "ipv6.dst")
_TSV_COLUMNS = ["frame.number", "frame.time_epoch", "frame.protocols", "vlan.id", *_ADDRESS_COLUMNS, "ip.proto",
                "ipv6.nxt", "tcp.srcport", "tcp.dstport", "tcp.stream", "udp.srcport",
                "udp.dstport", "udp.stream"]
_LAYER_COLUMNS = ["ip_layers", "inner_ip", "ip_idx", "inner_next", "next_idx", "kind", "tunnel"]


@lru_cache(maxsize=2)
def read_tsv(trace: Path) -> pd.DataFrame:
    """The columns of packets.tsv.gz used here, as text ("" when empty)."""
    return pd.read_csv(trace.parent / "packets.tsv.gz", sep="\t", dtype=str,
                       usecols=_TSV_COLUMNS, keep_default_na=False, quoting=3)


def layers(protocols: str) -> tuple[int, str, int, str, int, str, bool]:
    """What tshark's frame.protocols says about a frame's layers.

    Returns (IP layers before any ICMP, the innermost of them, its index among
    the frame's layers of that kind, the protocol right after it (IPv6
    extension headers skipped), that protocol's index among its kind, the
    innermost TCP/UDP layer anywhere, whether a tunnel header is present). The
    indexes pick the value in tshark's comma-separated fields (outer first); an
    ICMP error's quoted header is not an inner layer.
    """
    tokens = protocols.split(":")
    cut = next((i for i, t in enumerate(tokens) if t in ("icmp", "icmpv6")), len(tokens))
    at = [i for i, t in enumerate(tokens[:cut]) if t in ("ip", "ipv6")]
    transports = [t for t in tokens if t in ("tcp", "udp")]
    kind = transports[-1] if transports else ""
    tunnel = any(t in TUNNEL_TOKENS for t in tokens)
    if not at:
        return 0, "", 0, "", 0, kind, tunnel
    inner = tokens[at[-1]]
    after = [(i, t) for i, t in enumerate(tokens) if i > at[-1] and t not in IPV6_EXT]
    nxt_at, nxt = after[0] if after else (len(tokens), "")
    return (len(at), inner, tokens[:at[-1]].count(inner), nxt, tokens[:nxt_at].count(nxt),
            kind, tunnel)


def stack_table(protocols: pd.Series) -> pd.DataFrame:
    """layers() of every frame, worked out once per distinct protocol stack."""
    per_text = {p: layers(p) for p in pd.unique(protocols)}
    return pd.DataFrame([per_text[p] for p in protocols], index=protocols.index,
                        columns=_LAYER_COLUMNS)


def carries(t: pd.DataFrame, pk: pd.DataFrame, addresses: set[str]) -> np.ndarray:
    """Frames that carry one of ``addresses`` in any IP header (tshark's or ours)."""
    hit = np.zeros(len(t), dtype=bool)
    for col in _ADDRESS_COLUMNS:
        values = t[col]
        per_value = {v: bool(addresses.intersection(v.split(","))) for v in pd.unique(values)}
        hit |= values.map(per_value).to_numpy(dtype=bool)
    for col in ("src_addr", "dst_addr"):
        hit |= pk[col].astype(object).isin(addresses).to_numpy()
    return hit


def _nth(col: pd.Series, idx: np.ndarray) -> np.ndarray:
    """The idx-th comma-separated value of each row ("" when absent)."""
    parts = col.str.split(",")
    return np.array([p[i] if i < len(p) else "" for p, i in zip(parts, idx, strict=True)],
                    dtype=object)


def _num(values: object) -> pd.Series:
    return pd.to_numeric(pd.Series(values), errors="coerce")


def tshark_frames(t: pd.DataFrame) -> pd.DataFrame:
    """tshark's view of each frame: stream, layers, innermost addresses, ports and VLAN."""
    out = pd.DataFrame({"frame": t["frame.number"].astype(np.int64).to_numpy(),
                        "protocols": t["frame.protocols"].to_numpy()})
    out = out.join(stack_table(t["frame.protocols"].reset_index(drop=True)))
    last = np.full(len(t), -1)
    tcp = (out["kind"] == "tcp").to_numpy()
    stream = np.where(tcp, _nth(t["tcp.stream"], last), _nth(t["udp.stream"], last))
    out["stream"] = _num(stream)
    vlan_ids = t["vlan.id"].str.split(",")
    out["vlans"] = [len(v) if v != [""] else 0 for v in vlan_ids]
    out["inner_vlan"] = _num(_nth(t["vlan.id"], last)).fillna(0).astype(np.int64).to_numpy()
    v6 = (out["inner_ip"] == "ipv6").to_numpy()
    ip_idx, nxt_idx = out["ip_idx"].to_numpy(), out["next_idx"].to_numpy()
    for name, v4_col, v6_col in (("inner_src", "ip.src", "ipv6.src"),
                                 ("inner_dst", "ip.dst", "ipv6.dst"),
                                 ("inner_proto", "ip.proto", "ipv6.nxt")):
        out[name] = _nth(pd.Series(np.where(v6, t[v6_col], t[v4_col])), ip_idx)
    named = out["inner_next"].map(PROTO_NUMBER | {"icmpv6": 58})  # after any extensions
    out["inner_proto"] = named.fillna(_num(out["inner_proto"])).fillna(-1).astype(np.int64)
    inner_tcp = (out["inner_next"] == "tcp").to_numpy()
    for name, col in (("inner_sport", "srcport"), ("inner_dport", "dstport")):
        values = pd.Series(np.where(inner_tcp, t[f"tcp.{col}"], t[f"udp.{col}"]))
        out[name] = _num(_nth(values, nxt_idx)).fillna(0).astype(np.int64).to_numpy()
    out["icmp_quote"] = out["protocols"].str.contains(_ICMP_QUOTE)
    return out


def _ones(n: int) -> dict[str, np.ndarray]:
    return {m: np.ones(n, np.int64) for m in ("pkts", "ip", "wire")}


def key_text(k: pd.DataFrame) -> pd.Series:
    """One string per pair key, the form of streams_compare.pair_text."""
    return (k["proto"].astype(str) + " " + k["lo_addr"].astype(str) + ":"
            + k["lo_port"].astype(str) + " " + k["hi_addr"].astype(str) + ":"
            + k["hi_port"].astype(str) + " vlan " + k["vlan"].astype(str))


def keys(proto: np.ndarray, src: pd.Series, sport: np.ndarray, dst: pd.Series,
         dport: np.ndarray, vlan: np.ndarray) -> np.ndarray:
    """Pair key text per row (ports 0 for ICMP, as NFStream reports them)."""
    portless = np.isin(proto, PORTLESS)
    n = len(proto)
    k = canonical(proto, src, np.where(portless, 0, sport), dst, np.where(portless, 0, dport),
                  vlan, _ones(n), _ones(n), grouped=False)
    return key_text(k).to_numpy(dtype=object)


def _vlan(col: pd.Series, tool: Tool) -> np.ndarray:
    if not tool.vlan_in_key:
        return np.zeros(len(col), np.int64)
    return col.astype("Int64").fillna(0).to_numpy(np.int64)


def flow_keys(flows: pd.DataFrame, tool: Tool) -> pd.Series:
    """The pair key of every flow (as streams_compare.ours keys it), indexed by flow_id."""
    text = keys(proto_numbers(flows["proto"]), flows["orig_addr"], flows["orig_port"],
                flows["resp_addr"], flows["resp_port"], _vlan(flows["vlan"], tool))
    return pd.Series(text, index=flows["flow_id"].to_numpy())


@lru_cache(maxsize=4)
def tso_frames(trace: Path) -> frozenset[int]:
    """Frames (1-based) whose IPv4 total length field is 0 (TSO captures), read from the
    raw bytes, not from the decoder."""
    from tracker.decode import decode
    from tracker.sources.files import open_capture

    found: list[int] = []
    with open_capture(trace) as reader:
        batches = [(fb, decode(fb, checksums=False)) for fb in reader]
    for fb, pb in batches:
        v4 = (pb.ip_version == 4) & (pb.l3_offset >= 0)
        at = pb.l3_offset[v4]
        zero = (fb.data[at + 2] == 0) & (fb.data[at + 3] == 0)
        found.extend((pb.record[v4][zero] + 1).tolist())
    return frozenset(found)


def our_frames(pk: pd.DataFrame, trace: Path, tool: Tool) -> pd.DataFrame:
    """Our packet rows with the pair of each frame's flow (``ours``)."""
    out = pk[["frame", "status", "ip_version", "proto", "ip_len", "caplen", "wire_len",
              "frag_offset", "more_fragments"]].reset_index(drop=True)
    out["status"] = out["status"].astype(str)
    out["tso"] = out["frame"].isin(tso_frames(trace)).to_numpy()
    out["ours"] = np.full(len(out), None, dtype=object)
    # A TCP packet whose header is cut short joins its flow without being counted (as in
    # Zeek): it is in no pair's counts.
    fragment = (out["frag_offset"].fillna(0) > 0) | out["more_fragments"].fillna(False)
    header_cut = out["status"].isin(["TRUNCATED", "MALFORMED"]) & (out["proto"] == 6) \
        & ~fragment
    counted = pk["flow_id"].notna().to_numpy() & ~header_cut.to_numpy(dtype=bool)
    if counted.any():
        ids = pk["flow_id"].to_numpy()[counted].astype(np.int64)
        flows = load_flows(trace, tool.vlan_in_key)
        out.loc[counted, "ours"] = flow_keys(flows, tool).loc[ids].to_numpy()
    out["src_addr"] = pk["src_addr"].astype(object).to_numpy()
    out["dst_addr"] = pk["dst_addr"].astype(object).to_numpy()
    for c in ("src_port", "dst_port"):
        out[c] = pk[c].astype("Int64").fillna(0).to_numpy(np.int64)
    return out


def tshark_members(trace: Path, f: pd.DataFrame) -> np.ndarray:
    """The pair key of the tshark stream each frame is counted in (None: in no stream)."""
    t = pd.read_csv(trace.parent / "tshark_streams.csv", dtype={"a_addr": str, "b_addr": str})
    text = keys(t["kind"].map(PROTO_NUMBER).to_numpy(np.int64), t["a_addr"],
                t["a_port"].to_numpy(), t["b_addr"], t["b_port"].to_numpy(),
                np.zeros(len(t), np.int64))
    by_stream = dict(zip(zip(t["kind"], t["stream"], strict=True), text, strict=True))
    return np.array([None if pd.isna(s) else by_stream.get((k, int(s)))
                     for k, s in zip(f["kind"], f["stream"], strict=True)], dtype=object)


def nfstream_members(f: pd.DataFrame) -> np.ndarray:
    """NFStream's pair of each frame, approximated (module docstring); None: in no flow."""
    tunnel = (f["ip_layers"] >= 2).to_numpy()
    frag = (f["status"] == "FRAGMENT").to_numpy()
    proto = f["proto"].astype("Int64").fillna(-1).to_numpy(np.int64)
    proto = np.where(tunnel, f["inner_proto"].to_numpy(np.int64), proto)
    # A first fragment keeps its ports when it holds the whole TCP (20) / UDP (8) header.
    payload = f["ip_len"].astype("Int64").fillna(0).to_numpy(np.int64) - 20
    ported = np.isin(proto, (6, 17)) & (~frag | (payload >= np.where(proto == 6, 20, 8)))
    src = np.where(tunnel, f["inner_src"], f["src_addr"])
    dst = np.where(tunnel, f["inner_dst"], f["dst_addr"])
    sport = np.where(tunnel, f["inner_sport"], f["src_port"]).astype(np.int64)
    dport = np.where(tunnel, f["inner_dport"], f["dst_port"]).astype(np.int64)
    keep = ~f["protocols"].str.contains(":cfp:", regex=False).to_numpy()
    keep &= ~(f["tunnel"].to_numpy(dtype=bool) & ~tunnel)  # a tunnel payload that is not IP
    keep &= ~(frag & (f["frag_offset"].astype("Int64").fillna(0).to_numpy() > 0))
    keep &= ~f["tso"].to_numpy(dtype=bool)  # NFStream drops IPv4 packets of total length 0
    keep &= pd.notna(src) & pd.notna(dst) & (src != "")
    out = np.full(len(f), None, dtype=object)
    if keep.any():
        out[keep] = keys(proto[keep], pd.Series(src[keep]), np.where(ported, sport, 0)[keep],
                         pd.Series(dst[keep]), np.where(ported, dport, 0)[keep],
                         f["inner_vlan"].to_numpy(np.int64)[keep])
    return out


def frames(trace: Path, tool: Tool, addresses: set[str]) -> pd.DataFrame:
    """The frames carrying ``addresses``: our fields and flow pair (``ours``), tshark's
    fields, and the pair the tool counts each in (``theirs``)."""
    t, pk = read_tsv(trace), load_packets(trace, tool.vlan_in_key)
    if len(t) != len(pk):
        raise AssertionError(f"{trace}: {len(pk)} frames, tshark has {len(t)}")
    hit = carries(t, pk, addresses)
    f = our_frames(pk[hit], trace, tool)
    f = f.merge(tshark_frames(t[hit]), on="frame", how="left", validate="one_to_one")
    f["theirs"] = nfstream_members(f) if tool is NFSTREAM else tshark_members(trace, f)
    return f


def stream_sizes(trace: Path) -> pd.DataFrame:
    """Frames per (kind, stream) as this module assigns them, beside tshark_streams.csv's
    own count (``frames`` / ``csv_frames``): checks our reading of tshark's membership."""
    t = read_tsv(trace)
    kind = stack_table(t["frame.protocols"])["kind"].to_numpy()
    last = np.full(len(t), -1)
    stream = _num(np.where(kind == "tcp", _nth(t["tcp.stream"], last),
                           _nth(t["udp.stream"], last)))
    ours = pd.DataFrame({"kind": kind, "stream": stream}).dropna()
    ours = ours.astype({"stream": np.int64}).value_counts().rename("frames")
    s = pd.read_csv(trace.parent / "tshark_streams.csv")
    csv = s.set_index(["kind", "stream"])
    csv = (csv["a2b_frames"] + csv["b2a_frames"]).rename("csv_frames")
    return pd.concat([ours, csv], axis=1).fillna(0).astype(np.int64)
