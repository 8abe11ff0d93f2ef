"""Content gaps: the G/g history letters and missed_bytes, as Zeek finds them (ZEEK-FACTS 8).

Each test is a TCP conversation written packet by packet (byte literals through the
decoder and the flow table). The expected values are Zeek's rules worked by hand: only
an ACK beyond the data seen in order declares a gap; G for the originator's missing
data, g for the responder's; only while both sides are established; missed_bytes sums
the holes. The first test is Zeek's own baseline core.tcp.miss-end-data (history
ShADafgF, missed_bytes 2902).
"""

from __future__ import annotations

import numpy as np

from tracker.decode import decode
from tracker.flows import FlowOptions, FlowRecords, FlowTable
from tracker.frames import LINKTYPE_ETHERNET, FrameBatch
from tracker.report.flows import flows_dataframe

ETH = bytes.fromhex("00005e005301" "00005e005302" "0800")
CLIENT, SERVER = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2])
SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10
C_ISN, S_ISN = 1000, 50000


def tcp(from_client: bool, seq: int, ack: int, flags: int, data: bytes = b"") -> bytes:
    """An Ethernet/IPv4/TCP frame between CLIENT:40000 and SERVER:80."""
    src, dst = (CLIENT, SERVER) if from_client else (SERVER, CLIENT)
    sport, dport = (40000, 80) if from_client else (80, 40000)
    seg = (sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + seq.to_bytes(4, "big")
           + ack.to_bytes(4, "big") + bytes([0x50, flags]) + bytes.fromhex("ffff0000" "0000")
           + data)
    ip = (bytes([0x45, 0]) + (20 + len(seg)).to_bytes(2, "big") + bytes.fromhex("00004000")
          + bytes([64, 6]) + bytes(2) + src + dst)
    return ETH + ip + seg


def flow(frames: list[bytes], caplen: list[int] | None = None) -> dict:
    """The one flow of the frames (cut to ``caplen`` where given), as a dict."""
    wire = [len(f) for f in frames]
    cut = [f[:c] for f, c in zip(frames, caplen or wire, strict=True)]
    fb = FrameBatch.from_frames(cut, linktype=LINKTYPE_ETHERNET, wire_len=wire,
                                ts_ns=list(np.arange(len(frames)) * 1_000_000))
    table = FlowTable(FlowOptions())
    records = FlowRecords.concat([table.update(decode(fb), fb), table.flush()])
    rows = flows_dataframe(records).to_dict("records")
    assert len(rows) == 1
    return rows[0]


def handshake() -> list[bytes]:
    return [tcp(True, C_ISN, 0, SYN), tcp(False, S_ISN, C_ISN + 1, SYN | ACK),
            tcp(True, C_ISN + 1, S_ISN + 1, ACK)]


def test_zeek_miss_end_data() -> None:
    """The server's 2902 bytes were never captured; its FIN comes after them and the
    client's ACK of the FIN reveals them: one gap in responder data (g)."""
    c, s = C_ISN + 1, S_ISN + 1
    frames = handshake() + [
        tcp(True, c, s, PSH | ACK, b"GET / HTTP/1.0\r\n"),  # 16 bytes
        tcp(False, s, c + 16, ACK),
        tcp(False, s + 2902, c + 16, FIN | ACK),
        tcp(True, c + 16, s + 2903, ACK),  # acks the FIN: 2904 relative, clipped to 2903
        tcp(True, c + 16, s + 2903, FIN | ACK)]
    f = flow(frames)
    assert f["history"] == "ShADafgF"
    assert f["missed_bytes"] == 2902
    assert (f["orig_bytes"], f["resp_bytes"]) == (16, 2902)


def test_a_lost_segment_in_the_middle() -> None:
    """Client data 1-100 and 201-300 captured, 101-200 lost; the server's ACK of 301
    declares the hole: G, 100 missed bytes. Data never acknowledged is no gap."""
    c, s = C_ISN + 1, S_ISN + 1
    frames = handshake() + [
        tcp(True, c, s, ACK, bytes(100)),
        tcp(True, c + 200, s, ACK, bytes(100)),
        tcp(False, s, c + 300, ACK),
        tcp(True, c + 300, s, ACK, bytes(50))]  # never acked: not a gap
    f = flow(frames)
    assert f["history"] == "ShADaG"
    assert f["missed_bytes"] == 100


def test_a_payload_cut_by_the_snaplen_is_missing_once_acked() -> None:
    c, s = C_ISN + 1, S_ISN + 1
    data = tcp(False, s, c, ACK, bytes(1000))
    frames = handshake() + [data, tcp(True, c, s + 1000, ACK)]
    full = [len(f) for f in frames]
    f = flow(frames, caplen=full[:3] + [len(data) - 900, full[4]])
    assert f["history"] == "ShAdg"  # the cut segment still counts as a data packet
    assert f["missed_bytes"] == 1000


def test_gaps_letter_scales_per_direction_and_in_order() -> None:
    """Ten holes in the client's data: G once, then again at the 10th (1, 10, 100, ...)."""
    c, s = C_ISN + 1, S_ISN + 1
    frames = handshake()
    for k in range(10):  # each round: 10 bytes missing, then 10 bytes seen, then an ACK
        frames += [tcp(True, c + 20 * k + 10, s, ACK, bytes(10)),
                   tcp(False, s, c + 20 * k + 20, ACK)]
    f = flow(frames)
    assert f["history"] == "ShADaGG"
    assert f["missed_bytes"] == 100


def test_no_gap_without_a_handshake_or_after_a_reset() -> None:
    """A connection seen midway is partial: its endpoints are never 'clean', so an ACK
    past missing data marks nothing (report_gaps_for_partial is off)."""
    c, s = C_ISN + 1, S_ISN + 1
    midway = [tcp(True, c + 500, s, ACK, bytes(100)), tcp(False, s, c + 700, ACK)]
    f = flow(midway)
    assert "G" not in f["history"] and f["missed_bytes"] == 0
    reset = handshake() + [tcp(True, c, s, RST | ACK), tcp(False, s, c + 500, ACK)]
    f = flow(reset)
    assert "G" not in f["history"] and f["missed_bytes"] == 0


def test_retransmissions_and_overlaps_are_no_gaps() -> None:
    c, s = C_ISN + 1, S_ISN + 1
    frames = handshake() + [
        tcp(True, c, s, ACK, bytes(100)),
        tcp(True, c, s, ACK, bytes(100)),  # a retransmission
        tcp(True, c + 50, s, ACK, bytes(100)),  # overlaps, extends to 150
        tcp(False, s, c + 150, ACK)]
    f = flow(frames)
    assert "G" not in f["history"] and f["missed_bytes"] == 0


def test_snaplen_capture_misses_every_payload() -> None:
    """captures/snaplen-96.pcap (captures/README.md): no payload was captured whole;
    the acks declare the client's 100 bytes (G) and the server's 2800 + 1400 (g)."""
    from pathlib import Path

    import tracker

    path = Path(__file__).resolve().parents[2] / "captures" / "snaplen-96.pcap"
    f = tracker.read_flows(path).iloc[0]
    assert (f["history"], f["missed_bytes"]) == ("ShADdGgFf", 4300)
