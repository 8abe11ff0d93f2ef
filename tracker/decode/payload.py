"""The few payload bits the flow table needs, read for whole batches.

Zeek's DNS analyzer flips a connection whose first packet is a DNS response
(the QR bit set, RFC 1035 section 4.1.1), and its NTP analyzer one where the
originator speaks as a server or the responder as a client (the NTP mode,
RFC 5905 section 7.3). Those two are the only payload bits the flow table
looks at.
"""

from __future__ import annotations

import numpy as np

from tracker.packets import PROTO_UDP, PacketBatch, Status

UDP_HEADER = 8  # RFC 768
DNS_HEADER = 12  # RFC 1035 4.1.1: id, flags, four counts
DNS_FLAGS_AT = 2  # the byte holding QR (its top bit), after the 16-bit id
NTP_HEADER = 48  # RFC 5905 7.3: the header without extensions or MAC
NTP_MODE = 0x07  # low 3 bits of the first byte (after leap indicator and version)


def dns_qr(data: np.ndarray, pb: PacketBatch, frame_end: np.ndarray) -> np.ndarray:
    """The QR bit of OK UDP payloads of 12 bytes or more, -1 elsewhere (int8).

    Read only where the frame holds the byte; fragments and cut frames get -1.
    """
    qr = np.full(len(pb), -1, dtype=np.int8)
    at = pb.l4_offset + UDP_HEADER + DNS_FLAGS_AT
    ok = (pb.proto == PROTO_UDP) & (pb.payload_len >= DNS_HEADER) & (pb.l4_offset >= 0) \
        & (pb.status == Status.OK) & (at < frame_end)
    qr[ok] = data[at[ok]] >> 7
    return qr


def ntp_mode(data: np.ndarray, pb: PacketBatch, frame_end: np.ndarray) -> np.ndarray:
    """The NTP mode of OK UDP payloads of 48 bytes or more, -1 elsewhere (int8).

    Read only where the frame holds the byte; fragments and cut frames get -1.
    """
    mode = np.full(len(pb), -1, dtype=np.int8)
    at = pb.l4_offset + UDP_HEADER
    ok = (pb.proto == PROTO_UDP) & (pb.payload_len >= NTP_HEADER) & (pb.l4_offset >= 0) \
        & (pb.status == Status.OK) & (at < frame_end)
    mode[ok] = data[at[ok]] & NTP_MODE
    return mode
