#!/usr/bin/env python3
"""The packet rate `tracker live` keeps up with, without kernel drops, beside Scapy's sniff().

    sudo .venv/bin/python benchmarks/live.py                  # 400k packets per rate step
    sudo .venv/bin/python benchmarks/live.py --packets 1000000 --rates 200000 500000 1000000
    sudo .venv/bin/python benchmarks/live.py --vxlan --filter "udp port 4789" --no-scapy

Needs root, iproute2 and tcpreplay (apt-get install tcpreplay). Makes two network
namespaces joined by a veth pair (removed at the end, whatever happens), makes a capture
with benchmarks/synth.py and rewrites every address in it to the two namespaces' own
(tcprewrite: 10.231.0.1 and 10.231.0.2, fd00:231::1 and ::2), so the replayed traffic goes
to no other address. Then, for each rate, `tcpreplay --pps RATE` sends the file out of one
end while the capture runs on the other, and the table says how many frames each tool saw
and how many the kernel dropped. Scapy's sniff() runs in a separate process on the same
traffic, with a count of what its callback saw. ``--vxlan`` sends every frame inside
VXLAN (benchmarks/vxlan.py's wrapping, the outer addresses rewritten to the namespaces';
veth MTU 9000 for the 50 more bytes), so `tracker live` decapsulates every packet;
``--filter`` gives `tracker live` a tcpdump filter.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
A, B = "tbencha", "tbenchb"
VA, VB = "tbva", "tbvb"
SNIFF = """
import sys, time
from scapy.all import sniff
n = [0]
def seen(p):
    n[0] += 1
print("ready", flush=True)
sniff(iface=sys.argv[1], prn=seen, store=False, timeout=float(sys.argv[2]))
print(n[0], flush=True)
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def make_pair() -> None:
    ip("netns", "add", A)
    ip("netns", "add", B)
    ip("link", "add", VA, "type", "veth", "peer", "name", VB)
    ip("link", "set", VA, "netns", A)
    ip("link", "set", VB, "netns", B)
    for ns, dev in ((A, VA), (B, VB)):
        ip("-n", ns, "link", "set", dev, "mtu", "9000")  # VXLAN frames: 50 bytes more
        ip("-n", ns, "link", "set", dev, "up")


def remove_pair() -> None:
    for ns in (A, B):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def make_capture(packets: int, folder: Path, vxlan: bool) -> Path:
    raw, out = folder / "raw.pcap", folder / "replay.pcap"
    subprocess.run([sys.executable, str(HERE / "synth.py"), "-o", str(raw), "--packets",
                    str(packets), "--seed", "7", "--quiet"], check=True)
    if vxlan:  # the inner frames are payload: only the outer addresses are rewritten
        from vxlan import wrap

        wrap(raw, folder / "vxlan.pcap")
        raw = folder / "vxlan.pcap"
    # Every address becomes one of the namespaces' own: no other address is ever a target.
    subprocess.run(["tcprewrite", f"--infile={raw}", f"--outfile={out}",
                    "--srcipmap=0.0.0.0/0:10.231.0.1/32,[::/0]:[fd00:231::1/128]",
                    "--dstipmap=0.0.0.0/0:10.231.0.2/32,[::/0]:[fd00:231::2/128]",
                    "--fixcsum"], check=True, capture_output=True)
    return out


def wait_for(stream, word: bytes) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if select.select([stream], [], [], 1)[0]:
            line = stream.readline()
            if word in line or not line:
                return
    raise RuntimeError(f"no {word!r} within 120 s")


SENDER = {"name": "tcpreplay", "count": 0}


def replay(capture: Path, rate: int) -> float:
    if SENDER["name"] == "trafgen":
        return trafgen(capture, rate, int(SENDER["count"]))
    t = time.monotonic()
    speed = "--topspeed" if rate == 0 else f"--pps={rate}"  # 0: as fast as it can
    subprocess.run(["ip", "netns", "exec", B, "tcpreplay", "-q", "--preload-pcap", speed,
                    "-i", VB, str(capture)], check=True, capture_output=True)
    return time.monotonic() - t


def trafgen(capture: Path, rate: int, count: int) -> float:
    """netsniff-ng's trafgen (a TX ring, one CPU): the capture's packets round robin until
    ``count`` are sent; much faster than tcpreplay here."""
    cfg = capture.with_suffix(".cfg")
    if not cfg.exists():
        subprocess.run(["netsniff-ng", "--in", str(capture), "--out", str(cfg), "-q"],
                       check=True, capture_output=True)
    speed = [] if rate == 0 else ["-b", f"{rate}pps"]
    t = time.monotonic()
    subprocess.run(["ip", "netns", "exec", B, "trafgen", "-o", VB, "-i", str(cfg), "-n",
                    str(count), "-P", "1", "-q", *speed], check=True, capture_output=True)
    return time.monotonic() - t


def run_tracker(capture: Path, rate: int, filter: str | None) -> tuple[int, int, float]:
    """(frames seen, kernel drops, seconds of sending) for one rate."""
    extra = [] if filter is None else ["--filter", filter]
    proc = subprocess.Popen(["ip", "netns", "exec", A, sys.executable, "-m", "tracker", "live",
                             "-i", VA, "--format", "csv", "-o", os.devnull, *extra],
                            cwd=REPO, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    wait_for(proc.stderr, b"listening on")
    time.sleep(1.0)  # the compiled loops load on the first block
    seconds = replay(capture, rate)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    text = err.decode()
    frames = int(re.search(r"(\d+) frames", text).group(1))  # type: ignore[union-attr]
    drops = int(re.search(r"(\d+) dropped", text).group(1))  # type: ignore[union-attr]
    return frames, drops, seconds


def run_scapy(capture: Path, rate: int, packets: int) -> int:
    timeout = packets / (rate or 1_000_000) + 5
    proc = subprocess.Popen(["ip", "netns", "exec", A, sys.executable, "-c", SNIFF, VA,
                             str(timeout)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    wait_for(proc.stdout, b"ready")
    time.sleep(0.5)
    replay(capture, rate)
    out, _ = proc.communicate(timeout=timeout + 600)
    return int(out.split()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--packets", type=int, default=400_000)
    p.add_argument("--rates", type=int, nargs="+", default=[100_000, 250_000, 500_000,
                                                            750_000, 1_000_000, 0],
                   help="packets per second asked of tcpreplay; 0 is --topspeed")
    p.add_argument("--no-scapy", action="store_true", help="leave out Scapy's sniff()")
    p.add_argument("--vxlan", action="store_true",
                   help="send every frame inside VXLAN (tracker live decapsulates them)")
    p.add_argument("--filter", metavar="EXPR", help="a tcpdump filter for tracker live")
    p.add_argument("--trafgen", type=int, metavar="N",
                   help="send N packets with netsniff-ng's trafgen (the capture's packets "
                   "round robin) instead of tcpreplay")
    a = p.parse_args()
    if a.trafgen:
        SENDER.update(name="trafgen", count=a.trafgen)
    if os.geteuid() != 0:
        print("needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 1
    remove_pair()
    make_pair()
    try:
        with tempfile.TemporaryDirectory() as folder:
            capture = make_capture(a.packets, Path(folder), a.vxlan)
            frames = int(subprocess.run(["capinfos", "-c", "-M", str(capture)],
                                        capture_output=True, text=True,
                                        check=False).stdout.split()[-1] or 0) \
                if subprocess.run(["which", "capinfos"], capture_output=True,
                                  check=False).returncode == 0 else a.packets
            if a.trafgen:
                frames = a.trafgen
            print(f"{frames:,} frames per run, sent by {SENDER['name']}\n")
            print("| rate asked (pps) | sent in s | tracker live: frames | kernel drops | "
                  "Scapy sniff(): frames |")
            print("|---|---|---|---|---|")
            for rate in a.rates:
                seen, drops, seconds = run_tracker(capture, rate, a.filter)
                peer = "-" if a.no_scapy else f"{run_scapy(capture, rate, frames):,}"
                print(f"| {rate:,} | {seconds:.1f} ({frames / seconds:,.0f} pps) | {seen:,} | "
                      f"{drops:,} | {peer} |", flush=True)
    finally:
        remove_pair()
    return 0


if __name__ == "__main__":
    sys.exit(main())
