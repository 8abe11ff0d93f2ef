"""Live capture: an AF_PACKET socket with a TPACKET_V3 ring, read a block at a time.

>>> with LiveSource("eth0", bpf="tcp port 443", duration=10) as src:   # doctest: +SKIP
...     for batch in src:                 # FrameBatch; empty when no packet came in time
...         ...

Scapy resolves the interface, opens the AF_PACKET socket and attaches the
kernel filter that libpcap compiles for it (full tcpdump syntax). On that
socket the kernel fills a memory-mapped ring of blocks (``PACKET_RX_RING``,
``TPACKET_V3``, linux/if_packet.h); each block the kernel hands over holds
many frames, and a compiled loop (_ring.py) locates them for one FrameBatch
whose buffer is the ring itself (zero-copy; the block goes back to the kernel
once the batch was used), or copies them out when they must change. Two
things libpcap does are done here too: a VLAN tag the NIC took out of the
frame (``tp_vlan_tci``) is put back, and on a loopback interface the outgoing
copy of each packet is dropped, so every packet is seen once. When no block is ready within
``poll_ms`` an empty batch comes, so the pipeline can let idle flows expire
by the wall clock (``now_ns``). ``dropped`` is the kernel's drop count
(``PACKET_STATISTICS``).
"""

from __future__ import annotations

import mmap
import os
import select
import socket
import struct
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

import numpy as np

from tracker import libpcap
from tracker.errors import CaptureSourceError
from tracker.frames import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, FrameBatch

SOL_PACKET = 263  # linux/socket.h
ETH_P_ALL = 0x0003  # linux/if_ether.h
SLL_HDR_LEN = 16  # pcap/sll.h
SKF_AD_OFF, SKF_AD_PROTOCOL, SKF_AD_PKTTYPE = 0xFFFFF000, 0, 4  # linux/filter.h (-4096)
SO_ATTACH_FILTER = 26  # asm-generic/socket.h
PACKET_RX_RING, PACKET_STATISTICS, PACKET_VERSION = 5, 6, 10  # linux/if_packet.h
TPACKET_V3 = 2
TP_STATUS_KERNEL, TP_STATUS_USER = 0, 1
SNAPLEN = libpcap.SNAPLEN  # tcpdump's default
LINK_NAMES = {0: "NULL (BSD loopback)", 1: "EN10MB (Ethernet)", 12: "RAW (Raw IP)",
              101: "RAW (Raw IP)", 113: "LINUX_SLL (Linux cooked v1)",
              276: "LINUX_SLL2 (Linux cooked v2)"}


# After a stop, how long to wait for the kernel to hand over frames it already holds.
STOP_DRAIN_S = 2.0

class LiveSource:
    """A FrameSource on a network interface (see the module docstring).

    ``duration`` (seconds from the opening) and ``count`` (frames) end the
    capture by themselves; ``stop()`` ends it from elsewhere (a signal handler).
    """

    def __init__(self, iface: str, *, bpf: str | None = None, snaplen: int = SNAPLEN,
                 duration: float | None = None, count: int | None = None,
                 block_bytes: int = 1 << 20, blocks: int = 64, poll_ms: int = 200) -> None:
        self.name = iface
        self.snaplen = snaplen
        self._count, self._poll_ms = count, poll_ms
        self._records = 0
        self._bytes = 0
        self._dropped = 0
        self._stopped = False
        # Scapy's socket object closes the socket when it goes: it is kept with it.
        self.cooked = iface == "any"
        self._listener: Any
        self.userspace_filter: str | None = None
        if self.cooked:
            self._sock, self.userspace_filter = _open_any(bpf)
            self._listener, self.linktype = self._sock, LINKTYPE_LINUX_SLL
        else:
            self._listener, self.linktype = _open_socket(iface, bpf)
            self._sock = self._listener.ins
        self._loopback = _loopback_index()
        self._block_bytes, self._blocks = block_bytes, blocks
        self._map = _map_ring(self._sock, block_bytes, blocks, poll_ms)
        self._ring = np.frombuffer(self._map, dtype=np.uint8)
        # Reading the statistics resets them: the drops counted so far are of the frames that
        # filled the socket's queue before its filter and ring were in place, not this
        # capture's (hundreds on a busy interface).
        self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
        self.opened = time.monotonic()
        self._deadline = None if duration is None else self.opened + duration
        self._next = 0

    def banner(self) -> str:
        """tcpdump's first line: what is captured, and how much of each frame."""
        kind = LINK_NAMES.get(self.linktype, str(self.linktype))
        return f"listening on {self.name}, link-type {kind}, snapshot length {self.snaplen} bytes"

    @property
    def records(self) -> int:
        return self._records

    @property
    def bytes_read(self) -> int:
        return self._bytes

    @property
    def size(self) -> None:
        return None

    @property
    def dropped(self) -> int:
        """Frames the kernel dropped since the capture opened (ring full)."""
        if self._sock.fileno() >= 0:
            raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
            _, drops, _ = struct.unpack("III", raw)  # tpacket_stats_v3; reading resets it
            self._dropped += drops
        return self._dropped

    def now_ns(self) -> int:
        return time.time_ns()

    def stop(self) -> None:
        self._stopped = True

    def __iter__(self) -> Iterator[FrameBatch]:
        drain_until: float | None = None
        while True:
            block = self._next * self._block_bytes
            if self._done() and not self._ready(block):
                # Frames the kernel wrote before the stop but still holds in the block it
                # fills are the capture's too: wait for the block's hand-over (its timeout,
                # which took up to ~1 s on Linux 6.18), never longer than STOP_DRAIN_S.
                drain_until = drain_until or time.monotonic() + STOP_DRAIN_S
                if not self._filling(block) or time.monotonic() >= drain_until \
                        or self._count_reached():
                    return
            if not self._ready(block):
                self._wait(draining=drain_until is not None)
                if not self._ready(block):
                    yield self._empty()
                    continue
            batch, shared = self._take(block)
            self._next = (self._next + 1) % self._blocks
            if len(batch):
                yield batch  # used up (decoded, counted, written) before the loop goes on
            if shared:
                self._release(block)

    def _filling(self, block: int) -> bool:
        """Whether the kernel holds frames in this block that it has not handed over (it
        counts them in num_pkts as it writes them)."""
        return not self._ready(block) and struct.unpack_from("=I", self._map, block + 12)[0] > 0

    def _count_reached(self) -> bool:
        return self._count is not None and self._records >= self._count

    def _ready(self, block: int) -> bool:
        """Whether the kernel handed the block over (block_status, host byte order)."""
        return bool(struct.unpack_from("=I", self._map, block + 8)[0] & TP_STATUS_USER)

    def _done(self) -> bool:
        return self._stopped or (self._deadline is not None
                                 and time.monotonic() >= self._deadline) or self._count_reached()

    def _wait(self, draining: bool = False) -> None:
        timeout = self._poll_ms / 1000
        if self._deadline is not None and not draining:
            timeout = max(0.0, min(timeout, self._deadline - time.monotonic()))
        select.select([self._sock], [], [], timeout)

    def _take(self, block: int) -> tuple[FrameBatch, bool]:
        """The frames of one ready block, and whether they are still in the ring.

        Zero-copy when no frame needs changing: the batch's buffer is the ring, and the
        block goes back to the kernel only after the batch was used. Otherwise (a VLAN
        tag to put back, cooked headers to make) the frames are copied out and the block
        goes back at once.
        """
        from tracker.sources._ring import locate_block, walk_block

        n_max = max(struct.unpack_from("=I", self._map, block + 12)[0], 1)
        start, caplen, wire, ts = (np.empty(n_max, np.int64) for _ in range(4))
        n = -1 if self.cooked else locate_block(self._ring, block, self.snaplen,
                                                self._loopback, start, caplen, wire, ts)
        data, shared = self._ring, n >= 0
        if not shared:
            room = self._block_bytes + 20 * (self._block_bytes // 32)  # tags, cooked headers
            data = np.empty(room, dtype=np.uint8)
            n = walk_block(self._ring, block, self.snaplen, self._loopback, self.cooked, data,
                           start, caplen, wire, ts)
            self._release(block)
        if self._count is not None:
            n = min(n, self._count - self._records)
        batch = FrameBatch(data, start[:n], caplen[:n], wire[:n], ts[:n], self.linktype,
                           self._records)
        self._records += n
        self._bytes += int(caplen[:n].sum())
        return batch, shared

    def _release(self, block: int) -> None:
        """Give the block back to the kernel (TP_STATUS_KERNEL): it may refill it now."""
        self._ring[block + 8:block + 12] = 0

    def _empty(self) -> FrameBatch:
        z = np.zeros(0, np.int64)
        return FrameBatch(np.zeros(0, np.uint8), z, z, z, z, self.linktype, self._records)

    def close(self) -> None:
        if self._sock.fileno() >= 0:
            self.dropped  # noqa: B018 - the last drop count, before the socket goes
            self._listener.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _open_socket(iface: str, bpf: str | None) -> tuple[Any, int]:
    """Scapy's AF_PACKET socket on ``iface`` with the kernel filter; (Scapy's socket
    object, link type)."""
    _need_privilege(iface)
    try:
        socket.if_nametoindex(iface)
    except OSError:
        names = ", ".join(name for _, name in socket.if_nameindex())
        raise CaptureSourceError(f"{iface}: no such interface; the interfaces here are: "
                                 f"{names}") from None
    import logging

    # Scapy warns that it cannot guess a dissector for some link types: none is used here.
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    from scapy.arch.linux import L2ListenSocket
    from scapy.data import ARPHRD_TO_DLT
    from scapy.error import Scapy_Exception

    hatype = _hatype(iface)
    try:
        listener: Any = L2ListenSocket(iface=iface, promisc=True)
    except (Scapy_Exception, OSError) as err:
        raise CaptureSourceError(f"{iface}: cannot open a capture socket: {err}") from None
    if bpf is not None:
        _attach(listener.ins, libpcap.for_interface(bpf, iface))
    return listener, ARPHRD_TO_DLT.get(hatype, LINKTYPE_ETHERNET)


def _need_privilege(iface: str) -> None:
    if os.geteuid() != 0 and not _has_net_raw():
        raise CaptureSourceError(
            f"{iface}: live capture needs root or the CAP_NET_RAW capability; run as root "
            "(sudo) or give the interpreter the capability (setcap cap_net_raw+eip)")


def _open_any(bpf: str | None) -> tuple[socket.socket, str | None]:
    """A cooked socket on every interface (pcap-linux.c's "any"): SOCK_DGRAM, so frames
    come without their link headers. The filter libpcap compiles for the cooked header is
    fixed up for the kernel; when it reads cooked fields the kernel cannot see, it stays
    in userspace: (socket, the expression left to userspace or None)."""
    _need_privilege("any")
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    if bpf is None:
        return sock, None
    insns = libpcap.for_interface(bpf, "any")
    if not _fix_cooked(insns):
        return sock, bpf
    _attach(sock, insns)
    return sock, None


def _fix_cooked(insns: np.ndarray) -> bool:
    """pcap-linux.c fix_program/fix_offset: loads past the 16-byte cooked header move back
    by 16; loads of its packet type and protocol become the kernel's ancillary loads;
    any other load of it cannot be done in the kernel (False)."""
    for row in insns:
        cls, mode = row["code"] & 0x07, row["code"] & 0xE0
        if cls in (0, 1) and mode in (0x20, 0x40, 0xA0):  # LD/LDX with ABS, IND, MSH
            if row["k"] >= SLL_HDR_LEN:
                row["k"] -= SLL_HDR_LEN
            elif row["k"] == 0:
                row["k"] = SKF_AD_OFF + SKF_AD_PKTTYPE
            elif row["k"] == 14:
                row["k"] = SKF_AD_OFF + SKF_AD_PROTOCOL
            else:
                return False
    return True


def _loopback_index() -> int:
    try:
        return socket.if_nametoindex("lo")
    except OSError:
        return -1


def _attach(sock: socket.socket, insns: np.ndarray) -> None:
    """SO_ATTACH_FILTER: the kernel runs the program on every packet for this socket."""
    import ctypes

    from scapy.libs.structures import bpf_insn, sock_fprog

    program = (bpf_insn * len(insns)).from_buffer_copy(insns.tobytes())
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                    bytes(sock_fprog(len(insns), ctypes.cast(program,
                                                             ctypes.POINTER(bpf_insn)))))


def _hatype(iface: str) -> int:
    try:
        with open(f"/sys/class/net/{iface}/type") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1


def _has_net_raw() -> bool:
    """Whether this process has CAP_NET_RAW (bit 13 of the effective set)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 13))
    except OSError:
        pass
    return False


def _map_ring(sock: socket.socket, block_bytes: int, blocks: int, poll_ms: int) -> mmap.mmap:
    """Set up the TPACKET_V3 receive ring on ``sock`` and map it."""
    frame_bytes = 2048  # only checked by the kernel for alignment in V3
    sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
    req = struct.pack("7I", block_bytes, blocks, frame_bytes, block_bytes // frame_bytes * blocks,
                      max(1, poll_ms // 2), 0, 0)
    sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
    return mmap.mmap(sock.fileno(), block_bytes * blocks, mmap.MAP_SHARED,
                     mmap.PROT_READ | mmap.PROT_WRITE)
