"""-i any's kernel filter: libpcap's program for the Linux cooked header, fixed up for a
socket that sees no link header, as pcap-linux.c's fix_program does."""

from __future__ import annotations

import numpy as np

from tracker.decode.bpf import compile_bpf
from tracker.libpcap import BPF_INSN
from tracker.sources.live import SKF_AD_OFF, SKF_AD_PKTTYPE, SKF_AD_PROTOCOL, _fix_cooked

LINUX_SLL = 113


def _rows(expression: str) -> np.ndarray:
    code, jt, jf, k = compile_bpf(expression, LINUX_SLL)
    rows = np.zeros(len(code), dtype=BPF_INSN)
    rows["code"], rows["jt"], rows["jf"], rows["k"] = code, jt, jf, k
    return rows


def _loads(rows: np.ndarray) -> list[int]:
    ld = ((rows["code"] & 0x07) <= 1) & np.isin(rows["code"] & 0xE0, (0x20, 0x40, 0xA0))
    return rows["k"][ld].tolist()


def test_loads_past_the_cooked_header_move_back_and_its_fields_become_ancillary() -> None:
    rows = _rows("tcp port 80")
    before = _loads(rows)
    assert 14 in before  # the cooked header's protocol field
    assert _fix_cooked(rows)
    after = _loads(rows)
    assert SKF_AD_OFF + SKF_AD_PROTOCOL in after
    assert [k - 16 for k in before if k >= 16] == [k for k in after if k < SKF_AD_OFF]
    inbound = _rows("inbound")
    assert _fix_cooked(inbound) and _loads(inbound) == [SKF_AD_OFF + SKF_AD_PKTTYPE]


def test_a_load_of_other_cooked_bytes_stays_in_userspace() -> None:
    assert not _fix_cooked(_rows("link[2:2] == 1"))  # the ARPHRD type: not in the kernel
