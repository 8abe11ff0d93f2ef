"""The packets frame built batch by batch (report/packets.py PacketRows): the same frame
as from all the decoded rows at once, whatever the batches."""

from __future__ import annotations

import ipaddress

import pandas as pd
import pytest

import tracker
from tests.conftest import CAPTURES
from tracker.decode import decode
from tracker.flows import FlowOptions, FlowTable
from tracker.frames import FrameBatch
from tracker.packets import PacketBatch
from tracker.report.packets import packets_dataframe
from tracker.sources.files import open_capture


@pytest.mark.parametrize("name", ["office.pcap", "ipv4-fragments.pcap", "ipv6-fragments.pcap"])
def test_small_batches_give_the_frame_of_all_rows_at_once(name: str) -> None:
    """Addresses numbered batch by batch end up as one sorted category list, and a
    fragment's flow id set by a later batch lands on its row."""
    path = CAPTURES / name
    with open_capture(path, batch_bytes=1 << 12) as reader:  # a few frames per batch
        frames = list(reader)
    table, batches, ids = FlowTable(FlowOptions()), [], []
    for fb in frames:
        pb = decode(fb)
        table.update(pb, fb)
        batches.append(pb)
        ids.append(table.flow_ids.copy())
        for records, flows in [table.earlier_flow_ids]:
            for r, f in zip(records.tolist(), flows.tolist(), strict=True):
                at = [b.record.tolist() for b in batches]
                for k, recs in enumerate(at):
                    if r in recs:
                        ids[k][recs.index(r)] = f
    whole = packets_dataframe(PacketBatch.concat(batches), pd.concat(
        [pd.Series(i) for i in ids], ignore_index=True).to_numpy())
    with open_capture(path, batch_bytes=1 << 12) as source:
        got = tracker.read_packets(source)
    pd.testing.assert_frame_equal(got, whole)
    names = list(got["src_addr"].cat.categories)
    assert names == sorted(names, key=numeric) and len(names) > 1


def numeric(text: str) -> int:
    """An address as its 128-bit number, IPv4 as ::ffff:a.b.c.d (the frames' order)."""
    address = ipaddress.ip_address(text)
    return int(address) | (0xFFFF << 32 if address.version == 4 else 0)


def test_an_address_the_snaplen_cut_is_missing_not_a_made_up_one() -> None:
    """A header cut by the snaplen keeps the fields before the cut (decode); an address
    cut whole or in half is <NA>, not "::" or half an IPv6 address (RFC 791 3.1: IPv4
    source at bytes 12-15, destination 16-19; RFC 8200 3: IPv6 8-23 and 24-39)."""
    from scapy.all import IP, TCP, Ether, IPv6

    v4 = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP())
    v6 = bytes(Ether() / IPv6(src="2001:db8::1", dst="2001:db8:1:2:3:4:5:6") / TCP())
    cuts = [v4[:14 + 14], v4[:14 + 18], v6[:14 + 34], v6]  # mid source, mid dst, mid dst, whole
    df = packets_dataframe(decode(FrameBatch.from_frames(cuts)))
    assert df["src_addr"].tolist()[1:] == ["10.0.0.1", "2001:db8::1", "2001:db8::1"]
    assert pd.isna(df["src_addr"][0])
    assert pd.isna(df["dst_addr"][0]) and pd.isna(df["dst_addr"][1]) and pd.isna(df["dst_addr"][2])
    assert df["dst_addr"][3] == "2001:db8:1:2:3:4:5:6"
    assert df["status"].tolist()[:3] == ["TRUNCATED"] * 3
