"""RunSummary: what one pass over a capture saw, for the closing line and ``df.attrs``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tracker.packets import PacketBatch, Status


@dataclass
class RunSummary:
    """Frames per status, flows, evictions and kernel drops of one pass.

    ``status`` counts frames by ``Status`` name; MALFORMED, TRUNCATED and the
    others are reported, never fatal. ``dropped`` is the live source's kernel
    drop count (None for files, which drop nothing).
    """

    frames: int = 0
    status: dict[str, int] = field(default_factory=lambda: {s.name: 0 for s in Status})
    flows: int = 0
    evicted: int = 0
    dropped: int | None = None

    def add(self, pb: PacketBatch) -> None:
        self.frames += len(pb)
        counts = np.bincount(pb.status, minlength=len(Status))
        for s in Status:
            self.status[s.name] += int(counts[s])

    def count(self, other: RunSummary) -> None:
        """Add ``other``'s frames, statuses and flows (of a later part of the input)."""
        self.frames += other.frames
        for name, n in other.status.items():
            self.status[name] += n
        self.flows += other.flows

    def line(self) -> str:
        """One line for stderr, like tcpdump's closing counts."""
        odd = ", ".join(f"{n} {name.lower()}" for name, n in self.status.items()
                        if n and name != "OK")
        evicted = f", {self.evicted} evicted by the open-flow cap" if self.evicted else ""
        dropped = f", {self.dropped} dropped by the kernel" if self.dropped is not None else ""
        return f"{self.frames} frames ({odd or 'all decoded'}), {self.flows} flows{evicted}{dropped}"

    def as_dict(self) -> dict[str, Any]:
        """Plain values only, as ``DataFrame.attrs`` must hold to survive ``to_parquet``."""
        return asdict(self)
