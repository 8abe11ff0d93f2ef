"""libpcap's filter compiler, through Scapy's bindings: tcpdump's grammar, never ours.

Two ways to get a handle to compile on, as tcpdump does:

- ``for_file(linktype)``: a handle on an empty capture file of that link type, so the
  program is the one ``tcpdump -r`` runs on a file (on a file, libpcap checks every BSD
  loopback family of IPv6, not just this host's);
- ``for_interface(iface)``: a live handle, so the program is the one the kernel must run
  on that socket (libpcap compiles ``vlan`` for the tag the kernel keeps out of the frame).

Scapy's own ``compile_filter`` is not used: it takes link type 0 (BSD loopback) for
"none given", and compiles for an interface on a dead handle. A bad expression is an
OptionError with libpcap's reason; Scapy and libpcap load only when a filter is given.
"""

from __future__ import annotations

import ctypes
import os
import struct
import tempfile
from typing import Any

import numpy as np

from tracker.errors import CaptureSourceError, OptionError

SNAPLEN = 262144  # tcpdump's default; the program's accept value, only non-zero matters
NETMASK_UNKNOWN = 0xFFFFFFFF  # PCAP_NETMASK_UNKNOWN, as tcpdump on a file
BPF_INSN = np.dtype([("code", "<u2"), ("jt", "u1"), ("jf", "u1"), ("k", "<u4")])  # pcap/bpf.h


def _pcap(expression: str) -> Any:
    try:
        from scapy.libs import winpcapy
    except OSError as missing:
        raise OptionError(f"filter {expression!r}: libpcap is not installed ({missing}); "
                          "./run setup installs it") from None
    return winpcapy


def for_file(expression: str, linktype: int) -> np.ndarray:
    """The program for ``expression`` on a capture file of ``linktype`` (BPF_INSN rows)."""
    pcap = _pcap(expression)
    with tempfile.NamedTemporaryFile(suffix=".pcap", delete=False) as empty:
        # pcap file header, host byte order (draft-ietf-opsawg-pcap section 4).
        empty.write(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, linktype))
    err = ctypes.create_string_buffer(pcap.PCAP_ERRBUF_SIZE)
    handle = pcap.pcap_open_offline(empty.name.encode(), err)
    os.unlink(empty.name)
    if not handle:
        raise OptionError(f"filter {expression!r}: libpcap cannot read link type {linktype}: "
                          f"{err.value.decode(errors='replace')}")
    return _compile(pcap, handle, expression)


def for_interface(expression: str, iface: str) -> np.ndarray:
    """The program for ``expression`` on a live handle of ``iface`` (BPF_INSN rows)."""
    pcap = _pcap(expression)
    err = ctypes.create_string_buffer(pcap.PCAP_ERRBUF_SIZE)
    handle = pcap.pcap_open_live(iface.encode(), SNAPLEN, 0, 0, err)
    if not handle:
        raise CaptureSourceError(f"{iface}: libpcap cannot open it: "
                                 f"{err.value.decode(errors='replace')}")
    return _compile(pcap, handle, expression)


def _compile(pcap: Any, handle: Any, expression: str) -> np.ndarray:
    """pcap_compile (optimized, netmask unknown) on ``handle``, which it closes."""
    from scapy.libs.structures import bpf_program

    prog = bpf_program()
    try:
        if pcap.pcap_compile(handle, ctypes.byref(prog), expression.encode(), 1,
                             NETMASK_UNKNOWN) == -1:
            reason = pcap.pcap_geterr(handle)
            reason = reason.decode(errors="replace") if isinstance(reason, bytes) else reason
            raise OptionError(f"filter {expression!r}: {reason}")
        raw = ctypes.string_at(prog.bf_insns, 8 * prog.bf_len)
        pcap.pcap_freecode(ctypes.byref(prog))
    finally:
        pcap.pcap_close(handle)
    return np.frombuffer(raw, dtype=BPF_INSN).copy()
