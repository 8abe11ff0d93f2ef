"""FrameBatch: raw frames of one link type, as the sources hand them to the decoder.

A batch holds thousands of frames without one Python object per frame: the
frames stay where the reader found them in one ``uint8`` buffer, and
``start``/``caplen`` locate each one. Frames are not packed back to back
with ``offsets`` (n+1): per-frame ``start`` lets the buffer be the file chunk
itself, with record headers between the frames, so no
copy is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Link-layer header types (tcpdump.org/linktypes.html). Several DLT values
# mean "raw IP" for historical reasons (12 and 14 on some BSDs, 101 officially).
LINKTYPE_NULL = 0  # BSD loopback, 4-byte address family in host byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_PPP = 9
LINKTYPE_FDDI = 10
LINKTYPE_RAW_BSD12 = 12
LINKTYPE_RAW_BSD14 = 14
LINKTYPE_PPP_HDLC = 50  # PPP in HDLC-like framing (RFC 1662)
LINKTYPE_RAW = 101
LINKTYPE_C_HDLC = 104  # Cisco HDLC
LINKTYPE_IEEE802_11 = 105  # 802.11 frames without a radio header
LINKTYPE_LOOP = 108  # OpenBSD loopback, address family in network byte order
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IEEE802_11_RADIOTAP = 127  # 802.11 behind a radiotap header
LINKTYPE_PPI = 192
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_NFLOG = 239  # Linux netfilter NFLOG: a header, then TLVs around the packet
LINKTYPE_LINUX_SLL2 = 276

# int64 nanoseconds cannot hold this; numpy's NaT has the same bit pattern.
NAT_NS = np.iinfo(np.int64).min
NS_PER_S = 1_000_000_000  # times are int64 nanoseconds everywhere


@dataclass(frozen=True, slots=True)
class FrameBatch:
    """Frames of one link type, located in one shared byte buffer.

    Attributes:
        data: the bytes; frame i is ``data[start[i] : start[i] + caplen[i]]``.
        start: int64 offset of each frame in ``data``.
        caplen: int64 captured length of each frame (what is in ``data``).
        wire_len: int64 original length on the wire (pcap ``orig_len``).
        ts_ns: int64 nanoseconds since the epoch, UTC; ``NAT_NS`` when unknown.
        linktype: the LINKTYPE_* of every frame in the batch.
        first_record: 0-based record number of frame 0 in its source, so that
            frame i is record ``first_record + i`` (tshark's frame.number - 1).
    """

    data: np.ndarray
    start: np.ndarray
    caplen: np.ndarray
    wire_len: np.ndarray
    ts_ns: np.ndarray
    linktype: int
    first_record: int = 0

    def __len__(self) -> int:
        return int(self.start.shape[0])

    @classmethod
    def from_frames(
        cls,
        frames: list[bytes],
        *,
        linktype: int = LINKTYPE_ETHERNET,
        ts_ns: list[int] | None = None,
        wire_len: list[int] | None = None,
        first_record: int = 0,
    ) -> FrameBatch:
        """Build a batch from byte strings (tests and the memory source).

        >>> FrameBatch.from_frames([b"\\x00" * 14], ts_ns=[0]).caplen.tolist()
        [14]
        """
        caplen = np.array([len(f) for f in frames], dtype=np.int64)
        start = np.zeros(len(frames), dtype=np.int64)
        if len(frames) > 1:
            start[1:] = np.cumsum(caplen)[:-1]
        data = np.frombuffer(b"".join(frames), dtype=np.uint8)
        ts = np.arange(len(frames), dtype=np.int64) if ts_ns is None else np.array(ts_ns, np.int64)
        wl = caplen.copy() if wire_len is None else np.array(wire_len, np.int64)
        return cls(data, start, caplen, wl, ts, linktype, first_record)
