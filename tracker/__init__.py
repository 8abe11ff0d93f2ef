"""Socket-pair tracker: TCP/UDP socket pairs and their states, from the wire.

Public API (heavy modules are imported on first use, so ``tracker --help``
starts fast)::

    read_flows(path, **options)    -> pandas.DataFrame, one row per flow
    read_packets(path, **options)  -> pandas.DataFrame, one row per frame
    FlowOptions                    the flow table's options (timeouts, keys, caps)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["FlowOptions", "__version__", "read_flows", "read_packets"]


def __getattr__(name: str) -> Any:
    # Lazy public API: importing tracker must not import pandas or numba.
    if name in ("read_flows", "read_packets"):
        from tracker import api

        return getattr(api, name)
    if name == "FlowOptions":
        from tracker.flows.options import FlowOptions

        return FlowOptions
    raise AttributeError(f"module 'tracker' has no attribute {name!r}")
