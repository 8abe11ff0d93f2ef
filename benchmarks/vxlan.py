#!/usr/bin/env python3
"""Tunnel decapsulation speed: read_flows of a generated capture wrapped in VXLAN.

    .venv/bin/python benchmarks/vxlan.py [CAPTURE]   # default: benchmarks/data/std-1M.pcap

Every frame of CAPTURE (a gen_pcap capture) goes inside Ethernet / IPv4 / UDP / VXLAN
between two VTEPs (10.99.0.1 and 10.99.0.2, port 4789; the outer source port is a hash
of the inner frame's addresses, as VTEPs choose it), written next to it as
``<name>-vxlan.pcap``. Then, interleaved, best of 5: read_flows of the VXLAN capture with
decapsulation on (outer flows plus every inner flow) and off (outer flows only), and of
the plain capture. Prints packets per second (frames of the file per second).
"""

from __future__ import annotations

import struct
import sys
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import tracker
from tracker.sources.files import open_capture

OUTER_ETH = bytes.fromhex("00005e005301" "00005e005302" "0800")
VXLAN = bytes.fromhex("08000000" "00002a00")  # I flag, VNI 42
VTEP_A, VTEP_B = bytes([10, 99, 0, 1]), bytes([10, 99, 0, 2])


def _outer(frame: bytes) -> bytes:
    """The 50 bytes before an inner frame: Ethernet, IPv4 (checksummed), UDP, VXLAN."""
    sport = 49152 + zlib.crc32(frame[26:38]) % 16384
    udp_len = 8 + len(VXLAN) + len(frame)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, 17, 0,
                               VTEP_A, VTEP_B))
    total = sum(struct.unpack("!10H", ip))
    total = (total & 0xFFFF) + (total >> 16)
    ip[10:12] = struct.pack("!H", ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF)
    return OUTER_ETH + bytes(ip) + struct.pack("!HHHH", sport, 4789, udp_len, 0) + VXLAN


def wrap(src: Path, dst: Path) -> None:
    """Write ``src`` (classic pcap, Ethernet) with every frame inside VXLAN."""
    data = src.read_bytes()
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out = [data[:24]]
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(endian + "IIII", data[pos:pos + 16])
        frame = data[pos + 16:pos + 16 + incl]
        head = _outer(frame)
        out.append(struct.pack(endian + "IIII", sec, frac, incl + len(head), orig + len(head)))
        out.append(head + frame)
        pos += 16 + incl
    dst.write_bytes(b"".join(out))


def best(path: Path, runs: int, **options: object) -> tuple[float, int]:
    times, flows = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        flows = len(tracker.read_flows(path, **options))
        times.append(time.perf_counter() - start)
    return min(times), flows


def main() -> int:
    plain = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "data" / "std-1M.pcap"
    if not plain.exists():
        print(f"{plain} is absent: run benchmarks/run.py once, or give a capture", file=sys.stderr)
        return 1
    vxlan = plain.with_name(plain.stem + "-vxlan.pcap")
    if not vxlan.exists():
        wrap(plain, vxlan)
    with open_capture(plain) as reader:
        frames = sum(len(batch) for batch in reader)
    tracker.read_flows(vxlan)  # compiled code loaded, files in the page cache
    cases = {"VXLAN, decapsulated": (vxlan, {}),
             "VXLAN, outer flows only": (vxlan, {"decapsulate": False}),
             "plain capture": (plain, {})}
    results: dict[str, list[tuple[float, int]]] = {name: [] for name in cases}
    for _ in range(5):  # interleaved: the machine's noise hits every case alike
        for name, (path, options) in cases.items():
            results[name].append(best(path, 1, **options))
    print(f"{plain.name}: {frames:,} frames; {vxlan.name}: the same inside VXLAN\n")
    print("| read_flows of | flows | best of 5 (s) | M packets/s |")
    print("|---|---|---|---|")
    for name, runs in results.items():
        seconds = min(t for t, _ in runs)
        print(f"| {name} | {runs[0][1]:,} | {seconds:.3f} | {frames / seconds / 1e6:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
