"""Live capture (tracker/sources/live.py, `tracker live`) on real kernel traffic.

Two network namespaces joined by a veth pair, made by the test and always removed: a real
TCP server and UDP echo in one (10.231.0.2), the client and the capture in the other
(10.231.0.1). Traffic goes only to those two addresses. Expected values are written from
what the scripts send.
"""

from __future__ import annotations

import csv
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import tracker
from tests.conftest import REPO

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root (run the tests as "
                       "root, as CI does)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2's ip is not installed "
                       "(./run setup installs it)"),
]
A_ADDR, B_ADDR = "10.231.0.1", "10.231.0.2"
STARTED: list[subprocess.Popen[bytes]] = []  # captures a test started

SERVER = f"""
import socket, threading
tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("{B_ADDR}", 8080)); tcp.listen()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("{B_ADDR}", 7777))
def echo():
    data, peer = udp.recvfrom(100); udp.sendto(b"pong!!", peer)
echoing = threading.Thread(target=echo)
echoing.start()
print("ready", flush=True)
conn, _ = tcp.accept(); got = b""
while len(got) < 1000:
    got += conn.recv(4096)
conn.sendall(b"y" * 500); conn.close()
echoing.join()
"""
CLIENT = f"""
import socket, time
c = socket.create_connection(("{B_ADDR}", 8080)); c.sendall(b"x" * 1000)
while c.recv(4096):
    pass
c.close()
s = socket.socket()
try:
    s.connect(("{B_ADDR}", 8081))
except ConnectionRefusedError:
    pass
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
u.sendto(b"ping", ("{B_ADDR}", 7777)); u.recvfrom(100)
time.sleep(0.5)
"""


@dataclass(frozen=True)
class Pair:
    a: str  # namespace of the client and the capture
    b: str  # namespace of the servers
    veth_a: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def pair() -> Iterator[Pair]:
    tag = f"trk{os.getpid() % 100000}"
    p = Pair(f"{tag}a", f"{tag}b", f"{tag}va")
    try:
        try:
            _ip("netns", "add", p.a)
            _ip("netns", "add", p.b)
            _ip("link", "add", p.veth_a, "type", "veth", "peer", "name", f"{tag}vb")
        except subprocess.CalledProcessError as err:
            pytest.skip(f"cannot make network namespaces here: {err.stderr.decode().strip()}")
        _ip("link", "set", p.veth_a, "netns", p.a)
        _ip("link", "set", f"{tag}vb", "netns", p.b)
        _ip("-n", p.a, "addr", "add", f"{A_ADDR}/24", "dev", p.veth_a)
        _ip("-n", p.b, "addr", "add", f"{B_ADDR}/24", "dev", f"{tag}vb")
        for ns, dev in ((p.a, p.veth_a), (p.b, f"{tag}vb"), (p.a, "lo"), (p.b, "lo")):
            _ip("-n", ns, "link", "set", dev, "up")
        yield p
    finally:
        while STARTED:
            STARTED.pop().kill()
        for ns in (p.a, p.b):  # deleting a namespace deletes its end of the veth pair
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True,
                           timeout=30)


def _in(ns: str, *cmd: str, **kw: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["ip", "netns", "exec", ns, *cmd], cwd=REPO, **kw)  # type: ignore


def _wait_line(stream, word: bytes, timeout: float = 120) -> bytes:  # type: ignore[no-untyped-def]
    """Read lines until one contains ``word`` (the capture's banner, the server's 'ready')."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 1)
        if ready:
            line = stream.readline()
            if word in line:
                return line  # type: ignore[no-any-return]
            if not line:
                break
    raise AssertionError(f"no line with {word!r} within {timeout} s")


def _traffic(p: Pair) -> None:
    server = _in(p.b, sys.executable, "-c", SERVER, stdout=subprocess.PIPE)
    try:
        _wait_line(server.stdout, b"ready", 60)
        client = _in(p.a, sys.executable, "-c", CLIENT)
        assert client.wait(timeout=60) == 0
        assert server.wait(timeout=60) == 0
    finally:
        server.kill()


def _flows(rows: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    return {(r["proto"], r["resp_port"]): r for r in rows
            if r["orig_addr"] == A_ADDR and r["resp_addr"] == B_ADDR}


def _capture(p: Pair, tmp_path: Path, *args: str, iface: str | None = None
             ) -> tuple[subprocess.Popen[bytes], bytes]:
    """tracker live in namespace a, writing flows.csv; (the process, its banner line)."""
    cap = _in(p.a, sys.executable, "-m", "tracker", "live", "-i", iface or p.veth_a,
              "--format", "csv", "-o", str(tmp_path / "flows.csv"), *args,
              stderr=subprocess.PIPE)
    STARTED.append(cap)  # killed with the namespaces if the test fails before _stop
    return cap, _wait_line(cap.stderr, b"listening on")


def _stop(cap: subprocess.Popen[bytes], tmp_path: Path) -> list[dict[str, str]]:
    """Ctrl-C, as a user would; the capture must end cleanly. Its flows.csv rows."""
    time.sleep(0.5)
    cap.send_signal(signal.SIGINT)
    try:
        assert cap.wait(timeout=60) == 0
    finally:
        cap.kill()
    return list(csv.DictReader((tmp_path / "flows.csv").open()))


def test_live_capture_of_real_connections(pair: Pair, tmp_path: Path) -> None:
    """A complete connection is SF with the payload bytes sent each way, a refused one is
    REJ, a UDP exchange is seen both ways; Ctrl-C ends the capture (exit 0, open flows
    'stopped'), and the -w file reads back to the same flows."""
    pcap = tmp_path / "capture.pcap"
    cap, banner = _capture(pair, tmp_path, "-w", str(pcap), "-n")
    assert banner.decode().startswith(f"listening on {pair.veth_a}, link-type EN10MB")
    _traffic(pair)
    rows = _stop(cap, tmp_path)
    flows = _flows(rows)
    web = flows[("tcp", "8080")]
    assert web["conn_state"] == "SF" and web["history"].startswith("ShAD")
    assert (web["orig_payload_bytes"], web["resp_payload_bytes"]) == ("1000", "500")
    assert (web["orig_bytes"], web["resp_bytes"]) == ("1000", "500")
    assert flows[("tcp", "8081")]["conn_state"] == "REJ"
    echo = flows[("udp", "7777")]
    assert (echo["orig_pkts"], echo["resp_pkts"], echo["conn_state"]) == ("1", "1", "SF")
    assert (echo["orig_payload_bytes"], echo["resp_payload_bytes"]) == ("4", "6")
    assert {r["end_reason"] for r in rows} <= {"fin", "rst", "idle", "reuse", "stopped"}
    again = tracker.read_flows(pcap)
    mine = {(r["proto"], r["orig_addr"], r["orig_port"], r["resp_port"], r["conn_state"],
             r["history"], r["orig_pkts"], r["resp_pkts"], r["orig_ip_bytes"],
             r["resp_ip_bytes"]) for r in rows}
    theirs = {(str(f.proto), str(f.orig_addr), str(f.orig_port), str(f.resp_port),
               str(f.conn_state), "" if f.history is None or f.history != f.history
               else str(f.history), str(f.orig_pkts), str(f.resp_pkts), str(f.orig_ip_bytes),
               str(f.resp_ip_bytes)) for f in again.itertuples()}
    assert mine == theirs


def test_live_errors_are_one_line(pair: Pair) -> None:
    unknown = subprocess.run([sys.executable, "-m", "tracker", "live", "-i", "nosuch0",
                              "--duration", "1"], check=False, cwd=REPO, capture_output=True,
                             text=True, timeout=60)
    assert unknown.returncode == 1 and "no such interface" in unknown.stderr
    assert "lo" in unknown.stderr and "Traceback" not in unknown.stderr
    bad = subprocess.run(["ip", "netns", "exec", pair.a, sys.executable, "-m", "tracker", "live",
                          "-i", pair.veth_a, "-f", "tcp prt 80", "--duration", "1"], cwd=REPO,
                         check=False, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    assert "syntax error" in bad.stderr


def test_live_duration_ends_the_capture(pair: Pair) -> None:
    start = time.monotonic()
    r = subprocess.run(["ip", "netns", "exec", pair.a, sys.executable, "-m", "tracker", "live",
                        "-i", pair.veth_a, "--duration", "1", "-q"], cwd=REPO, check=False,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("listening on") and time.monotonic() - start < 60
    assert r.stdout.splitlines()[0].startswith("Proto")


def test_namespaces_are_removed_after_the_tests() -> None:
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           check=True).stdout
    assert f"trk{os.getpid() % 100000}" not in names


def test_the_kernel_filter_keeps_only_what_it_matches(pair: Pair, tmp_path: Path) -> None:
    cap, _ = _capture(pair, tmp_path, "-f", "udp port 7777", "-n")
    _traffic(pair)
    rows = _stop(cap, tmp_path)
    assert [(r["proto"], r["resp_port"], r["orig_pkts"], r["resp_pkts"]) for r in rows] == [
        ("udp", "7777", "1", "1")]


def test_vlan_tags_taken_out_by_the_kernel_are_put_back(pair: Pair, tmp_path: Path) -> None:
    """A frame tagged VLAN 10 sent into the veth: the receiving kernel takes the tag out
    of the frame (AF_PACKET hands it out of band) and the flow must still show vlan 10."""
    vb = pair.veth_a[:-1] + "b"
    cap, _ = _capture(pair, tmp_path, "-f", "vlan", "-n")
    send = ("from scapy.all import Ether, Dot1Q, IP, UDP, sendp; "
            f"sendp(Ether(dst='ff:ff:ff:ff:ff:ff') / Dot1Q(vlan=10) / IP(src='{B_ADDR}', "
            f"dst='{A_ADDR}') / UDP(sport=5000, dport=9999) / b'v', iface='{vb}', verbose=0)")
    assert _in(pair.b, sys.executable, "-c", send).wait(timeout=120) == 0
    rows = _stop(cap, tmp_path)
    assert [(r["proto"], r["orig_addr"], r["resp_port"], r["vlan"], r["orig_pkts"])
            for r in rows] == [("udp", B_ADDR, "9999", "10", "1")]


def test_idle_flows_expire_by_the_wall_clock(pair: Pair, tmp_path: Path) -> None:
    """One datagram, then silence: with a 1 s UDP timeout the flow ends 'idle' while no
    packet comes, not 'stopped' when the capture ends 3 s later."""
    cap, _ = _capture(pair, tmp_path, "-f", "udp", "--udp-inactivity", "1", "-n")
    send = f"import socket; socket.socket(2, 2).sendto(b'.', ('{B_ADDR}', 9999))"
    assert _in(pair.a, sys.executable, "-c", send).wait(timeout=60) == 0
    time.sleep(3)
    rows = _stop(cap, tmp_path)
    assert [(r["proto"], r["resp_port"], r["end_reason"]) for r in rows] == [
        ("udp", "9999", "idle")]


# Held connections in three states (the client is in namespace a, the capture too):
# 8090 established; 8091 half-closed by the client (client FIN_WAIT2, server CLOSE_WAIT);
# 8092 closed by the client first, then the server (client TIME_WAIT).
HOLDING_SERVER = f"""
import socket, time
socks = []
for port in (8090, 8091, 8092):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("{B_ADDR}", port)); s.listen(); socks.append(s)
print("ready", flush=True)
conns = [s.accept()[0] for s in socks]
time.sleep(1.5)
conns[2].close()            # after the client's FIN: the client goes to TIME_WAIT
time.sleep(30)
"""
SNAPSHOT = f"""
import json, os, socket, subprocess, time
import tracker
with tracker.LiveCapture("VETH", filter="tcp") as cap:
    held = [socket.create_connection(("{B_ADDR}", p)) for p in (8090, 8091, 8092)]
    held[0].sendall(b"x" * 300)
    held[1].shutdown(socket.SHUT_WR)
    held[2].close()
    time.sleep(3)
    flows = cap.snapshot()
    ss = subprocess.run(["ss", "-tanp"], capture_output=True, text=True, check=True).stdout
    ss_b = subprocess.run(["ip", "netns", "exec", "NS_B", "ss", "-tan"], capture_output=True,
                          text=True, check=True).stdout
    resp = {{str(r.resp_port): r.resp_state for r in flows.itertuples()
            if r.orig_addr == "{A_ADDR}"}}
    view = cap.view(numeric=True)
    owners = {{a.rsplit(":", 1)[1]: o for a, o in zip(view["Foreign Address"],
                                                      view["PID/Program"])}}
    states = {{str(r.resp_port): (r.orig_state, r.end_reason, int(r.orig_payload_bytes))
              for r in flows.itertuples() if r.orig_addr == "{A_ADDR}"}}
final = cap.flows()
print(json.dumps({{"ours": states, "ss": ss, "owners": owners, "me": os.getpid(),
                  "ss_b": ss_b, "resp": resp,
                  "final": {{str(r.resp_port): r.end_reason for r in final.itertuples()}}}}))
"""
SS_NAMES = {"ESTAB": "ESTABLISHED", "FIN-WAIT-2": "FIN_WAIT2", "TIME-WAIT": "TIME_WAIT",
            "CLOSE-WAIT": "CLOSE_WAIT", "FIN-WAIT-1": "FIN_WAIT1", "LAST-ACK": "LAST_ACK"}


def test_snapshot_states_equal_the_kernels(pair: Pair) -> None:
    """LiveCapture.snapshot()'s netstat states, inferred from the packets alone, equal the
    states ss -tan prints for the same local sockets at the same moment."""
    import json

    server = _in(pair.b, sys.executable, "-c", HOLDING_SERVER, stdout=subprocess.PIPE)
    try:
        _wait_line(server.stdout, b"ready", 60)
        script = SNAPSHOT.replace("VETH", pair.veth_a).replace("NS_B", pair.b)
        r = subprocess.run(["ip", "netns", "exec", pair.a, sys.executable, "-c", script],
                           cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    finally:
        server.kill()
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.splitlines()[-1])
    kernel, pids = {}, {}
    for line in got["ss"].splitlines()[1:]:
        f = line.split()
        if f[4].startswith(B_ADDR + ":"):
            port = f[4].rsplit(":", 1)[1]
            kernel[port] = SS_NAMES.get(f[0], f[0])
            pids[port] = line.split("pid=")[1].split(",")[0] if "pid=" in line else "-"
    assert kernel == {"8090": "ESTABLISHED", "8091": "FIN_WAIT2", "8092": "TIME_WAIT"}
    # netstat -p's PID/Program: the script's own sockets; TIME_WAIT has no process.
    assert pids == {"8090": str(got["me"]), "8091": str(got["me"]), "8092": "-"}
    assert {p: o.split("/")[0] for p, o in got["owners"].items()} == pids
    assert got["owners"]["8090"].endswith("/python3") or "python" in got["owners"]["8090"]
    ours = {port: state for port, (state, _, _) in got["ours"].items()}
    assert ours == kernel
    assert got["ours"]["8090"][1:] == ["open", 300]  # still open, 300 bytes so far
    # The servers' side, in the other namespace: resp_state against its own ss.
    server_side = {}
    for line in got["ss_b"].splitlines()[1:]:
        f = line.split()
        if f[3].startswith(B_ADDR + ":") and f[4].startswith(A_ADDR + ":"):
            server_side[f[3].rsplit(":", 1)[1]] = SS_NAMES.get(f[0], f[0])
    assert server_side["8090"] == "ESTABLISHED" and server_side["8091"] == "CLOSE_WAIT"
    for port, state in server_side.items():
        assert got["resp"][port] == state, (port, state)
    assert got["final"]["8090"] == "stopped"


def test_the_live_view_on_a_terminal_quits_on_q(pair: Pair) -> None:
    """On a terminal (a pseudo-terminal here) the view draws the flows with the process
    behind them and quits on q; the final table follows, exit 0."""
    import pty

    master, slave = pty.openpty()
    os.set_blocking(master, False)
    cap = _in(pair.a, sys.executable, "-m", "tracker", "live", "-i", pair.veth_a, "-n",
              "--interval", "0.3", "-f", "tcp", stdin=slave, stdout=slave, stderr=slave,
              env={**os.environ, "COLUMNS": "200", "LINES": "40", "TERM": "xterm"})
    seen = b""

    def read_until(word: bytes, timeout: float) -> bool:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            select.select([master], [], [], 0.2)
            try:
                seen += os.read(master, 65536)
            except (BlockingIOError, OSError):
                pass
            if word in seen:
                return True
        return False

    try:
        assert read_until(b"q quits", 120), seen[-2000:]
        _traffic(pair)
        assert read_until(b":8080", 30), seen[-2000:]
        os.write(master, b"q")
        assert cap.wait(timeout=60) == 0
        read_until(b"flows, ", 5)
    finally:
        cap.kill()
        os.close(master)
        os.close(slave)
    text = seen.decode(errors="replace")
    assert "PID/Program" in text and "dropped by the kernel" in text
    final = text[text.rindex("Proto"):]
    assert f"{B_ADDR}:8080" in final and " SF " in final


def test_json_snapshots_for_scripts(pair: Pair) -> None:
    """Not a terminal, --interval with --format json: one JSON snapshot line per interval.
    10 s for at least 5 lines at 0.5 s: the first snapshots wait while a fresh clone's
    first live run compiles the decoder (seconds on a loaded machine; 6 s gave 4 lines)."""
    import json

    cap = _in(pair.a, sys.executable, "-m", "tracker", "live", "-i", pair.veth_a, "-f", "tcp",
              "--interval", "0.5", "--format", "json", "--duration", "10", "-q",
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_line(cap.stderr, b"listening on")
        _traffic(pair)
        out, _ = cap.communicate(timeout=60)
    finally:
        cap.kill()
    assert cap.returncode == 0
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert len(lines) >= 5 and all({"time", "flows"} <= set(x) for x in lines)
    web = [f for x in lines for f in x["flows"] if f["resp_port"] == 8080]
    assert web and web[-1]["conn_state"] == "SF" and web[-1]["orig_payload_bytes"] == 1000


def test_any_interface_is_cooked_and_filtered_by_the_kernel(pair: Pair, tmp_path: Path) -> None:
    """-i any: Linux cooked frames from every interface (the namespace's loopback too, each
    packet once), the filter fixed up for the kernel as libpcap does."""
    pcap = tmp_path / "any.pcap"
    cap, banner = _capture(pair, tmp_path, "-f", "tcp port 8080 or tcp port 9090", "-w",
                           str(pcap), iface="any")
    assert b"link-type LINUX_SLL" in banner
    _traffic(pair)
    loop = ("import socket, threading; s = socket.socket(); s.bind(('127.0.0.1', 9090)); "
            "s.listen(); t = threading.Thread(target=lambda: s.accept()[0].close()); "
            "t.start(); c = socket.create_connection(('127.0.0.1', 9090)); t.join(); "
            "c.close()")
    assert _in(pair.a, sys.executable, "-c", loop).wait(timeout=60) == 0
    rows = _stop(cap, tmp_path)
    assert sorted(r["resp_port"] for r in rows) == ["8080", "9090"]  # no UDP, no 8081
    web = next(r for r in rows if r["resp_port"] == "8080")
    assert (web["conn_state"], web["orig_payload_bytes"], web["resp_payload_bytes"]) == (
        "SF", "1000", "500")
    local = next(r for r in rows if r["resp_port"] == "9090")  # over loopback: seen once
    assert local["orig_addr"] == "127.0.0.1" and local["history"].startswith("ShA")
    assert int(local["orig_pkts"]) <= 4  # SYN, ACK, FIN, ACK: not twice each
    with pcap.open("rb") as f:
        assert int.from_bytes(f.read(24)[20:24], "little") == 113  # LINKTYPE_LINUX_SLL


def test_frames_before_the_filter_are_not_drops() -> None:
    """Loopback noise that the filter rejects fills the socket's queue in the moment before
    the filter is attached; the kernel counts that overflow as drops, which are not the
    capture's (they were 150-260 per open before the count was reset at open)."""
    import socket
    import threading

    from tracker.sources.live import LiveSource

    done = threading.Event()

    def noise() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            while not done.is_set():
                s.sendto(b"x" * 100, ("127.0.0.1", 9))  # discard port, loopback only
                time.sleep(0.0002)

    sender = threading.Thread(target=noise)
    sender.start()
    try:
        time.sleep(0.1)
        for _ in range(3):
            with LiveSource("lo", bpf="tcp port 9") as source:
                time.sleep(0.3)
                assert source.dropped == 0
    finally:
        done.set()
        sender.join()


def test_frames_the_kernel_holds_at_a_stop_are_kept() -> None:
    """The kernel hands a ring block over only when it is full or its timer fires (up to
    ~1 s on Linux 6.18): a datagram sent just before stop() is still in the block being
    filled. The source waits for that block, so the datagram is read; before, it was
    lost, and a Ctrl-C lost the last packets of a capture."""
    import socket

    from tracker.sources.live import LiveSource

    with LiveSource("lo", bpf="udp port 9") as source, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        frames = iter(source)
        next(frames)  # the ring is open and polled
        s.sendto(b"x" * 10, ("127.0.0.1", 9))  # discard port, loopback only
        source.stop()
        got = sum(len(batch) for batch in frames)
    assert got == 1
