"""The compiled pass over plain frames (tracker/decode/plain.py) writes what the layers write.

decode(..., plain=False) runs every frame through the vectorized layers, the
decoder of every other test here; the plain pass must give the same value in
every column of every row, on real captures and on frames mutated at random.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from decode_frames import (
    ETH_IPV4,
    ETH_IPV6,
    ICMP_ECHO,
    MACS,
    TCP_SYN,
    UDP_DNS,
    ipv4,
    ipv6,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import CAPTURES, CORPUS, present
from tracker.decode import decode
from tracker.decode._bytes import ByteView
from tracker.decode.plain import decode_plain
from tracker.frames import FrameBatch
from tracker.jit import interpreted
from tracker.packets import SCHEMA, PacketBatch
from tracker.sources.files import open_capture

pytestmark = pytest.mark.skipif(interpreted(), reason="NUMBA_DISABLE_JIT=1: no plain pass")

TUNNELS = CORPUS.parent / "tunnels"
VLAN_7 = bytes.fromhex("8100" "0007")  # 802.1Q tag, VLAN 7, then the inner ethertype
TCP_MSS = bytes.fromhex("c350" "0050" "00000064" "00000000" "60" "02" "faf0" "0000" "0000"
                        "020405b4")  # a SYN with a 4-byte option (data offset 6)

# Frames the plain pass takes: every kind it decodes.
PLAIN = [
    ETH_IPV4 + ipv4(40, 6) + TCP_SYN,
    ETH_IPV4 + ipv4(44, 6) + TCP_MSS,
    ETH_IPV4 + ipv4(40, 17) + UDP_DNS,
    ETH_IPV4 + ipv4(32, 1) + ICMP_ECHO,
    ETH_IPV4 + ipv4(28, 47) + bytes(8),  # GRE: outer header only, all payload
    ETH_IPV4 + ipv4(44, 6, ver_ihl=0x46, options=bytes(4)) + TCP_SYN,
    MACS + VLAN_7 + bytes.fromhex("0800") + ipv4(40, 6) + TCP_SYN,
    ETH_IPV6 + ipv6(20, 6) + TCP_SYN,
    ETH_IPV6 + ipv6(20, 17) + UDP_DNS,
    ETH_IPV6 + ipv6(12, 58) + ICMP_ECHO,
    ETH_IPV6 + ipv6(8, 59) + bytes(8),  # no next header
    ETH_IPV4 + ipv4(40, 6) + TCP_SYN + bytes(6),  # Ethernet padding
]
# Frames it leaves to the layers: each breaks one of its conditions.
LEFT = [
    ETH_IPV4 + ipv4(40, 6, flags_frag=0x2000) + TCP_SYN,  # a first fragment
    ETH_IPV4 + ipv4(0, 6) + TCP_SYN,  # total length 0 (before offload)
    ETH_IPV4 + ipv4(40, 6, ver_ihl=0x44) + TCP_SYN,  # IHL 4
    ETH_IPV4 + ipv4(44, 6) + TCP_MSS[:22],  # options cut by the capture
    ETH_IPV4 + ipv4(24, 17) + UDP_DNS,  # a total length too short for the UDP header
    ETH_IPV6 + ipv6(0, 17) + UDP_DNS,  # payload length 0 (jumbogram)
    ETH_IPV6 + ipv6(28, 0) + bytes.fromhex("1100" "010400000000") + UDP_DNS,  # hop-by-hop
    MACS + bytes.fromhex("88a8" "000a" "8100" "0014" "0800") + ipv4(40, 6) + TCP_SYN,  # QinQ
    MACS + bytes.fromhex("0806") + bytes(28),  # ARP
    (ETH_IPV4 + ipv4(40, 6) + TCP_SYN)[:30],  # cut in the IPv4 header
]


def assert_same_rows(frames: FrameBatch) -> None:
    """Every column of the plain pass's decode equals the layers' alone."""
    got, want = decode(frames), decode(frames, plain=False)
    for name, _, _ in SCHEMA:
        same = getattr(got, name) == getattr(want, name)
        assert same.all(), (name, np.flatnonzero(~same)[:5])


def test_plain_frames_are_taken_and_others_left() -> None:
    frames = FrameBatch.from_frames(PLAIN + LEFT)
    end = frames.start + frames.caplen
    taken = decode_plain(ByteView(frames.data).main.buf, frames.start, end,
                         PacketBatch.empty(len(frames)))
    assert taken.tolist() == [True] * len(PLAIN) + [False] * len(LEFT)
    assert_same_rows(frames)


def _captures() -> list[object]:
    files = sorted(CAPTURES.glob("*.pcap*"))
    for root in (CORPUS, TUNNELS):
        files += sorted(p for p in root.rglob("*") if p.suffix in (".pcap", ".pcapng"))
    return [pytest.param(p, id=str(p.relative_to(CAPTURES.parent.parent))) for p in files]


@pytest.mark.parametrize("path", present(_captures(), CORPUS))
def test_every_capture_decodes_the_same_both_ways(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a capture cut at its end is fine here
        with open_capture(path) as cap:
            for frames in cap:
                assert_same_rows(frames)


@st.composite
def mutated(draw: st.DrawFn) -> list[bytes]:
    """Frames made from both lists: bytes overwritten (headers mostly), then cut."""
    frames = []
    for _ in range(draw(st.integers(1, 12))):
        frame = bytearray(draw(st.sampled_from(PLAIN + LEFT)))
        for _ in range(draw(st.integers(0, 3))):
            frame[draw(st.integers(0, min(len(frame), 70) - 1))] = draw(st.integers(0, 255))
        frames.append(bytes(frame[:draw(st.integers(0, len(frame)))]))
    return frames


@settings(max_examples=500, deadline=None)
@given(frames=mutated())
def test_mutated_frames_decode_the_same_both_ways(frames: list[bytes]) -> None:
    assert_same_rows(FrameBatch.from_frames(frames))
