"""A progress bar for long reads: share of the file read and packets per second.

Shown only when stderr is a terminal (as curl and pv do), so pipes, CI logs
and files get nothing. tqdm is imported only then, to keep start-up fast.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """Call ``update(bytes_read, size, frames)`` after each batch; ``close()`` at the end."""

    def __init__(self, stream: TextIO | None = None, *, force: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.enabled = force or self.stream.isatty()
        self._bar: Any = None
        self._start = time.monotonic()
        self._shown = 0

    def update(self, bytes_read: int, size: int | None, frames: int) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm import tqdm  # only for a terminal: tqdm is not needed otherwise

            self._bar = tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024,
                             file=self.stream, leave=False, dynamic_ncols=True,
                             desc="reading")
        self._bar.update(bytes_read - self._shown)
        self._shown = bytes_read
        elapsed = max(time.monotonic() - self._start, 1e-9)
        self._bar.set_postfix_str(f"{frames:,} packets, {frames / elapsed / 1e6:.2f} M/s",
                                  refresh=True)  # one redraw per batch (a few MB): cheap

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
