"""The few payload bits the flow table needs, read for whole batches.

Zeek's DNS analyzer flips a connection whose first packet is a DNS response
(the QR bit set, RFC 1035 section 4.1.1), and its NTP analyzer one where the
originator speaks as a server or the responder as a client (the NTP mode,
RFC 5905 section 7.3). Those two are the only payload bits the flow table
looks at. The same pass marks the rows that may carry a tunnel (``tunnel_hint``):
IP-in-IP and GRE, UDP to or from a tunnel port, and UDP payloads whose first two
bytes could start Teredo or AYIYA (Zeek's payload detection); tunnels.py opens
only those.
"""

from __future__ import annotations

import numpy as np

from tracker.decode.tunnels import TUNNEL_PROTOS
from tracker.decode.udp_tunnels import TUNNEL_PORTS, ayiya_detect, teredo_detect
from tracker.packets import PROTO_UDP, UDP_HEADER, PacketBatch, Status

DNS_HEADER = 12  # RFC 1035 4.1.1: id, flags, four counts
DNS_FLAGS_AT = 2  # the byte holding QR (its top bit), after the 16-bit id
NTP_HEADER = 48  # RFC 5905 7.3: the header without extensions or MAC
NTP_MODE = 0x07  # low 3 bits of the first byte (after leap indicator and version)


_TUNNEL_PORT = np.zeros(65536, np.bool_)
_TUNNEL_PORT[list(TUNNEL_PORTS)] = True
_IP_TUNNEL = np.zeros(256, np.bool_)
_IP_TUNNEL[list(TUNNEL_PROTOS)] = True
TEREDO_FIRST = 0x6  # an IPv6 header's version nibble (or 0x00 0x00/0x01 headers)
AYIYA_SECOND = 0x52  # AYIYA.cc L75-78: the payload's byte 1


def udp_payload_bits(data: np.ndarray, pb: PacketBatch, frame_end: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(DNS QR bit, NTP mode, tunnel hint): the QR bit and mode of OK UDP payloads long
    enough for a DNS header (12 bytes) and an NTP header (48), -1 elsewhere (int8 each),
    and whether a row may carry a tunnel (module docstring), in one pass over the rows.

    Read only where the frame holds the byte; fragments and cut frames get -1.
    """
    qr = np.full(len(pb), -1, dtype=np.int8)
    mode = np.full(len(pb), -1, dtype=np.int8)
    ok_row = pb.status == Status.OK
    hint = ok_row & _IP_TUNNEL[pb.proto.astype(np.uint8)]  # -1 (no protocol) is 255
    udp = (pb.proto == PROTO_UDP) & ok_row & (pb.src_port >= 0)
    rows = np.flatnonzero(udp)
    if rows.size == 0:
        return qr, mode, hint
    first = pb.l4_offset[rows] + UDP_HEADER
    end = frame_end[rows]
    b0 = np.where(first < end, data[np.minimum(first, end - 1)], -1)
    b1 = np.where(first + 1 < end, data[np.minimum(first + 1, end - 1)], -1)
    hint[rows] = _TUNNEL_PORT[pb.src_port[rows]] | _TUNNEL_PORT[pb.dst_port[rows]]
    # Zeek's payload detection of Teredo and AYIYA, run on the few rows whose first two
    # bytes could start either (the frame's end bounds it: a superset of the UDP payload's).
    may = np.flatnonzero((b0 >> 4 == TEREDO_FIRST) | ((b0 == 0) & (b1 >= 0) & (b1 <= 1))
                         | (b1 == AYIYA_SECOND))
    if may.size:
        hint[rows[may]] |= teredo_detect(data, first[may], end[may]) \
            | ayiya_detect(data, first[may], end[may])
    payload = pb.payload_len[rows]
    dns = payload >= DNS_HEADER
    at = first + DNS_FLAGS_AT
    ok = dns & (at < end)
    qr[rows[ok]] = data[at[ok]] >> 7
    ntp = (payload >= NTP_HEADER) & (b0 >= 0)
    mode[rows[ntp]] = b0[ntp] & NTP_MODE
    return qr, mode, hint

