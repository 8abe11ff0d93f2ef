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


def udp_payload_bits(data: np.ndarray, pb: PacketBatch, frame_end: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(DNS QR bit, NTP mode) of OK UDP payloads long enough for a DNS header (12 bytes)
    and an NTP header (48), -1 elsewhere (int8 each), read in one pass over the rows.

    Read only where the frame holds the byte; fragments and cut frames get -1.
    """
    qr = np.full(len(pb), -1, dtype=np.int8)
    mode = np.full(len(pb), -1, dtype=np.int8)
    udp = (pb.proto == PROTO_UDP) & (pb.payload_len >= DNS_HEADER) & (pb.status == Status.OK)
    rows = np.flatnonzero(udp)
    if rows.size == 0:
        return qr, mode
    first = pb.l4_offset[rows] + UDP_HEADER
    end = frame_end[rows]
    at = first + DNS_FLAGS_AT
    ok = (first >= UDP_HEADER) & (at < end)
    qr[rows[ok]] = data[at[ok]] >> 7
    ntp = (pb.payload_len[rows] >= NTP_HEADER) & (first >= UDP_HEADER) & (first < end)
    mode[rows[ntp]] = data[first[ntp]] & NTP_MODE
    return qr, mode
