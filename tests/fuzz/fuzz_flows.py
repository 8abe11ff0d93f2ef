#!/usr/bin/env python3
"""Fuzz target: the flow table (decode + FlowTable + flush), run by atheris.

    .venv/bin/python tests/fuzz/fuzz_flows.py CORPUS_DIR [SEED_DIR ...] [libFuzzer flags]
    NUMBA_DISABLE_JIT=1 .venv/bin/python tests/fuzz/fuzz_flows.py ...   # see below

The input is a packet program (fuzz_program.py): flow options, a batch size
and up to 256 packets whose bytes mean hosts, ports, TCP flags, sequence
steps, fragments and time steps (backwards, NaT, the year 2262). The frames
are built from it, decoded and run through a FlowTable with 16 initial slots
(so the growth paths run), then flushed; fuzz_contract.check_flows checks
the records and that another batch split gives the same flows.

By default the table's kernel runs compiled, as users run it, but libFuzzer
sees no coverage inside it. With NUMBA_DISABLE_JIT=1 the kernel runs as
instrumented Python: coverage guides the fuzzer through the state machine,
and an index out of bounds raises instead of reading past an array.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz_main

fuzz_main.setup_path()
if __name__ == "__main__":
    fuzz_main.instrument(["fuzz_contract", "fuzz_program"])

import fuzz_contract as fc
import fuzz_program as fp


def one_input(data: bytes) -> None:
    """Run one packet program through the flow table; any exception is a crash."""
    prog = fp.parse(data)
    fc.check_flows(fp.batches(prog, prog.batch), fp.batches(prog, 0), prog.options)


def regression_input(data: bytes, lift: tuple[str, ...] = ()) -> None:
    """As ``one_input``, with the named guards against known hangs lifted (fuzz_program.py)."""
    prog = fp.parse(data, lift=frozenset(lift))
    fc.check_flows(fp.batches(prog, prog.batch), fp.batches(prog, 0), prog.options)


# Two TCP packets with default options, then with a cap: loads the kernel's code.
WARMUP = (bytes(4 + 2 * fp.PACKET), bytes([1]) + bytes(3 + 2 * fp.PACKET))

if __name__ == "__main__":
    fuzz_main.fuzz(one_input, WARMUP)
