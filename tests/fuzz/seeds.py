#!/usr/bin/env python3
"""Build the seed corpora of the three fuzz targets from real captures.

    .venv/bin/python tests/fuzz/seeds.py OUT_DIR     # writes OUT_DIR/{readers,decode,flows}/

Sources: the project's own captures (``captures/``) and, when present, the
shared corpus (``../shared/corpus/*/*/trace.pcap*``, never copied into the
repository: the seeds go to OUT_DIR, a temporary or git-ignored place), plus
a few hand-made hostile files (HOSTILE below). Each seed is cut small (libFuzzer
mutates small inputs much faster), and named by its SHA-1 as libFuzzer does.

- readers: the first records or blocks of each file (at most CUT bytes), as
  is (flag byte 0) and gzipped by the target (flag 1); gzip files also raw.
- decode: groups of up to 4 consecutive frames of each link type (first
  FRAME_CUT bytes of each), in fuzz_decode's layout.
- flows: each capture's first packets turned into a packet program
  (fuzz_program.py): hosts and ports folded into its small spaces, flags,
  payload sizes and time steps kept as far as the layout holds them.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for p in (str(REPO), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import fuzz_decode
import fuzz_program as fp
import numpy as np

from tracker.decode import decode
from tracker.errors import TrackerError, TrackerWarning
from tracker.frames import FrameBatch
from tracker.packets import PacketBatch
from tracker.sources.memory import open_bytes

CORPUS = REPO.parent / "shared" / "corpus"
CUT = 3000  # bytes of a reader seed
FRAME_CUT = 200  # bytes of a frame in a decode seed
DECODE_SEEDS_PER_FILE = 12
FLOW_PACKETS = 48  # packets of a flows seed (a program of 4 + 48 * 12 bytes)
PCAP_MAGICS = {0xA1B2C3D4: 16, 0xA1B23C4D: 16, 0xA1B2CD34: 24}  # record header length


def sources() -> list[Path]:
    """The captures to take seeds from: the project's, then the shared corpus if present."""
    own = sorted(p for p in (REPO / "captures").iterdir() if ".pcap" in p.name)
    shared = sorted(CORPUS.glob("*/*/trace.pcap*")) if CORPUS.is_dir() else []
    return own + shared


def cut_pcap(image: bytes, limit: int) -> bytes:
    """The file header and the whole records that fit in ``limit`` bytes (at least one)."""
    for order in "<>":
        hdr = PCAP_MAGICS.get(struct.unpack_from(order + "I", image)[0])
        if hdr:
            break
    else:
        return image[:limit]
    pos = 24
    while pos + hdr <= len(image):
        incl = struct.unpack_from(order + "I", image, pos + 8)[0]
        if pos + hdr + incl > limit and pos > 24:
            break
        pos += hdr + incl
    return image[:pos]


def cut_pcapng(image: bytes, limit: int) -> bytes:
    """The whole blocks that fit in ``limit`` bytes (at least the section header)."""
    order = ">" if image[8:12] == b"\x1a\x2b\x3c\x4d" else "<"
    pos = 0
    while pos + 12 <= len(image):
        if image[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = ">" if image[pos + 8:pos + 12] == b"\x1a\x2b\x3c\x4d" else "<"
        blen = struct.unpack_from(order + "I", image, pos + 4)[0]
        if blen < 12 or (pos + blen > limit and pos > 0):
            break
        pos += blen
    return image[:pos]


def reader_seeds(raw: bytes) -> Iterator[bytes]:
    """Seeds of fuzz_readers: flag byte + image (see its docstring)."""
    image = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    cut = cut_pcapng(image, CUT) if image[:4] == b"\x0a\x0d\x0d\x0a" else cut_pcap(image, CUT)
    yield b"\x00" + cut
    yield b"\x01" + cut  # the target gzips it
    yield b"\x10" + cut  # compare the compiled walkers
    if raw is not image and len(raw) <= 4 * CUT:
        yield b"\x00" + raw


def frames(raw: bytes) -> Iterator[tuple[int, list[bytes], list[int], np.ndarray]]:
    """(link type, frames, wire lengths, timestamps) of each batch of a capture."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrackerWarning)
        try:
            with open_bytes(raw, name="seed") as reader:
                for fb in reader:
                    got = [fb.data[s:s + c].tobytes() for s, c in zip(fb.start, fb.caplen,
                                                                       strict=True)]
                    yield fb.linktype, got, fb.wire_len.tolist(), fb.ts_ns
        except TrackerError:
            return


def decode_seeds(raw: bytes) -> Iterator[bytes]:
    """Seeds of fuzz_decode: groups of up to 4 consecutive frames, cut to FRAME_CUT bytes."""
    made = 0
    for link, got, wire, _ in frames(raw):
        for lo in range(0, len(got), 4):
            if made == DECODE_SEEDS_PER_FILE:
                return
            group = [f[:FRAME_CUT] for f in got[lo:lo + 4]]
            yield fuzz_decode.join(link, group, wire[lo:lo + 4])
            made += 1


def flow_seed(raw: bytes) -> bytes | None:
    """A packet program from the first IP packets of a capture (see the module docstring)."""
    hosts: dict[tuple[int, int], int] = {}
    out: list[bytes] = []
    last_ts: int | None = None
    for link, got, wire, ts in frames(raw):
        pb = decode(open_batch(link, got, wire, ts))
        for i in np.flatnonzero(pb.ip_version > 0)[:FLOW_PACKETS - len(out)]:
            src = hosts.setdefault((int(pb.src_hi[i]), int(pb.src_lo[i])), len(hosts) % 16)
            dst = hosts.setdefault((int(pb.dst_hi[i]), int(pb.dst_lo[i])), len(hosts) % 16)
            step = 0 if last_ts is None else (int(pb.ts_ns[i]) - last_ts) // fp.MS
            last_ts = int(pb.ts_ns[i])
            out.append(program_packet(pb, int(i), src, dst, max(-32000, min(32000, step))))
        if len(out) >= FLOW_PACKETS:
            break
    return bytes(4) + b"".join(out) if out else None


def open_batch(link: int, got: list[bytes], wire: list[int], ts: np.ndarray) -> FrameBatch:
    """A FrameBatch of the frames (for decode)."""
    return FrameBatch.from_frames(got, linktype=link, ts_ns=ts.tolist(), wire_len=wire)


def program_packet(pb: PacketBatch, i: int, src: int, dst: int, step: int) -> bytes:
    """One 12-byte packet record of fuzz_program from decoded row ``i``."""
    proto, flags = int(pb.proto[i]), int(pb.tcp_flags[i])
    kinds = {6: 3, 17: 4, 58: 5} if pb.ip_version[i] == 6 else {6: 0, 17: 1, 1: 2}
    what = kinds.get(proto, 7 if pb.ip_version[i] == 6 else 6)
    offset, more = int(pb.frag_offset[i]), bool(pb.more_fragments[i])
    frag = 0 if not (offset or more) else 1 if offset == 0 else 2 if more else 3
    ports = [_port_selector(int(pb.src_port[i])), _port_selector(int(pb.dst_port[i]))]
    if proto in (1, 58):
        b4, b5 = max(int(pb.icmp_type[i]), 0), max(int(pb.icmp_code[i]), 0)
    elif what >= 6:
        b4, b5 = proto & 0xFF, 0
    else:
        b4, b5 = flags & 0xFF, flags >> 8
    size = min(max(int(pb.payload_len[i]), 0) // 8, 255)
    kind = what | frag << 4 | (0x40 if pb.vlan[i] >= 0 else 0)
    b8 = min(offset // 8, 255) if frag >= 2 else 0
    return bytes([kind, src | dst << 4, *ports, b4, b5, 0, 0, b8, size]) + struct.pack(">h", step)


def _port_selector(port: int) -> int:
    if port in fp.PORTS:
        return fp.PORTS.index(port)
    return len(fp.PORTS) + max(port, 0) % (256 - len(fp.PORTS))


def hostile_seeds() -> dict[str, list[bytes]]:
    """Hand-made inputs for what the issue names; the fuzzers mutate from there."""
    eth_syn = bytes(12) + b"\x08\x00" + bytes.fromhex(
        "45000028000140004006" "0000" "c0000201" "c6336402"  # IPv4, TCP, 40 bytes
        "c3500050" "00000064" "00000000" "5002faf0" "00000000")  # SYN 50000 -> 80
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 96, 1)
    rec = struct.pack("<IIII", 1, 0, len(eth_syn), len(eth_syn)) + eth_syn
    readers = [
        b"\x00" + head + struct.pack("<IIII", 1, 0, 0, 0),  # a record of 0 bytes
        b"\x00" + head + struct.pack("<IIII", 1, 0, 0xFFFFFFFF, 60),  # huge caplen
        b"\x00" + head + rec + struct.pack("<IIII", 1, 0, 500, 500) + eth_syn,  # past the end
        b"\x00" + head + struct.pack("<IIII", 1, 0, 200, 60) + eth_syn + bytes(146),  # > wire
        b"\x00" + head[:20] + struct.pack("<I", 0xBEEF) + rec,  # unknown link type
        b"\x00" + head + struct.pack("<IIII", 0xFFFFFFFF, 999999, 54, 54) + eth_syn,  # 2106
    ]
    seq = b"\x30" + bytes(3)  # options: checksums verified, 1 s timers; one batch
    flows = [seq + bytes.fromhex("00100101" "0200" "0000" "00" "00" "0000")
             + bytes.fromhex("08100101" "1200" "0000" "01" "00" "0001"),
             bytes([0x11, 1, 0, 0]) + bytes.fromhex("10100101" "0200" "0000" "00" "08" "8000")
             + bytes.fromhex("20100101" "0000" "0000" "01" "08" "7fff")]
    return {"readers": readers, "decode": [], "flows": flows}


def build(out: Path) -> dict[str, int]:
    """Write every seed under ``out``; returns how many each target got."""
    made: dict[str, set[str]] = {"readers": set(), "decode": set(), "flows": set()}
    extra = hostile_seeds()
    for path in sources():
        raw = path.read_bytes()
        if not raw:
            continue
        extra["readers"] += list(reader_seeds(raw))
        extra["decode"] += list(decode_seeds(raw))
        seed = flow_seed(raw)
        extra["flows"] += [seed] if seed else []
    for target, seeds in extra.items():
        (out / target).mkdir(parents=True, exist_ok=True)
        for data in seeds:
            name = hashlib.sha1(data).hexdigest()
            if name not in made[target]:
                (out / target / name).write_bytes(data)
                made[target].add(name)
    return {k: len(v) for k, v in made.items()}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    counts = build(Path(sys.argv[1]))
    print(", ".join(f"{n} {target} seeds" for target, n in counts.items()))
