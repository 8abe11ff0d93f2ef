#!/usr/bin/env python3
"""Fuzz target: the capture readers (pcap, pcapng, gzip of either), run by atheris.

    .venv/bin/python tests/fuzz/fuzz_readers.py CORPUS_DIR [SEED_DIR ...] [libFuzzer flags]

The first input byte chooses how to read, the rest is the file image:

- bit 0: gzip the image first (so mutations of the pcap inside reach the reader);
- bits 1-3: ``batch_bytes``, from 64 bytes (a refill every record) to 8 MiB;
- bit 4: read again with the numba-compiled record walkers and compare
  (compiled code has no bounds checks: a difference is a read out of bounds);
- bits 5-7: unused (decoding has its own target, fuzz_decode.py: decoding every batch here
  made this target three times slower).

The contract is fuzz_contract's: frames or one CaptureError with the file
name and position; see tests/fuzz/README.md for longer runs.
"""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz_main

fuzz_main.setup_path()
if __name__ == "__main__":
    fuzz_main.instrument(["fuzz_contract"],
                         dataflow=["tracker.sources._walk", "tracker.sources.files"])

import fuzz_contract as fc

BATCH_BYTES = (64, 128, 256, 1024, 4096, 1 << 16, 1 << 20, 8 << 20)


def one_input(data: bytes) -> None:
    """Read one fuzz input as a capture; a ContractViolation or other exception is a crash."""
    if not data:
        return
    flags, image = data[0], data[1:]
    if flags & 1:
        image = gzip.compress(image, compresslevel=1, mtime=0)
    fc.check_reader(image, batch_bytes=BATCH_BYTES[(flags >> 1) & 7],
                    compare_compiled=bool(flags & 16))


def install_compiled_walkers() -> None:
    """Compile the walkers from an uninstrumented copy of _walk (numba cannot compile hooks)."""
    from tracker.sources import _walk

    path = Path(_walk.__file__)
    spec = importlib.util.spec_from_file_location("_walk_compiled_copy", path)
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    from numba import njit

    # No disk cache: the copy has the same file and function names as the real
    # module, and its cached code would be loaded by the real module later
    # (numba then fails to import the copy's module name).
    _walk._compiled = (njit(copy.walk_pcap), njit(copy.walk_pcapng))


# A pcap and a pcapng file of one empty Ethernet frame each: flag 16 (compare
# with the compiled walkers) makes the warm-up compile both walkers.
WARMUP = (
    bytes([16]) + bytes.fromhex("d4c3b2a1" "02000400" "00000000" "00000000" "ffff0000" "01000000"
                                "00000000" "00000000" "0e000000" "0e000000") + bytes(14),
    bytes([16]) + bytes.fromhex("0a0d0d0a" "1c000000" "4d3c2b1a" "01000000" "ffffffffffffffff"
                                "1c000000" "01000000" "14000000" "01000000" "00000000"
                                "14000000" "06000000" "30000000" "00000000" "00000000"
                                "00000000" "0e000000" "0e000000") + bytes(16)
    + bytes.fromhex("30000000"),
)

if __name__ == "__main__":
    install_compiled_walkers()
    fuzz_main.fuzz(one_input, WARMUP)
