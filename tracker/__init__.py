"""Socket-pair tracker: TCP/UDP socket pairs and their states, from the wire.

Public API (heavy modules are imported on first use, so ``tracker --help``
starts fast)::

    read_packets(path)  -> pandas.DataFrame, one row per frame
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "read_packets"]


def __getattr__(name: str) -> Any:
    # Lazy public API: importing tracker must not import pandas or numba.
    if name == "read_packets":
        from tracker.api import read_packets

        return read_packets
    raise AttributeError(f"module 'tracker' has no attribute {name!r}")
