"""The live view of ``tracker live`` on a terminal: a table that refreshes like ``top``.

Every interval: the flows open now and those that ended in the last few
intervals, in netstat's view with the process behind each local socket (the
kernel's tables, read once per refresh), sorted by their current rate; a
header line with the totals, the kernel's drops and the filter. ``q`` or
Ctrl-C quits; so do ``--duration`` and ``--count``. Drawn with rich.
"""

from __future__ import annotations

import os
import select
import sys
import termios
import time
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from tracker.live import LiveCapture
from tracker.processes import socket_owners
from tracker.report.netstat import netstat_view

RECENT_S = 10.0  # ended flows stay on screen this long
SHOWN = ("Proto", "Local Address", "Foreign Address", "State", "PID/Program", "Pkts Sent",
         "Pkts Rcvd", "Bytes Sent", "Bytes Rcvd", "Rate")


@contextmanager
def _keys() -> Iterator[None]:
    """The terminal in cbreak mode (a key is read at once, unechoed), restored after."""
    fd = sys.stdin.fileno()
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _quit_pressed(timeout: float) -> bool:
    """Wait up to ``timeout`` s for a key; True when it was q."""
    if not os.isatty(sys.stdin.fileno()):
        time.sleep(timeout)
        return False
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    return bool(ready) and os.read(sys.stdin.fileno(), 1).lower() == b"q"


class LiveView:
    """Draws a LiveCapture until it ends or the user quits."""

    def __init__(self, cap: LiveCapture, *, interval: float, numeric: bool,
                 local: str | None) -> None:
        self.cap, self.interval = cap, interval
        self.numeric, self.local = numeric, local
        self._seen: dict[int, int] = {}
        self._last = time.monotonic()

    def run(self, stopped: Any) -> None:
        """Refresh every interval until the capture ends, q, or ``stopped()`` is true."""
        from rich.console import Console
        from rich.live import Live

        console = Console()
        with _keys(), Live(self._render(), console=console, transient=True,
                           auto_refresh=False) as live:
            while self.cap.running and not stopped():
                if _quit_pressed(self.interval):
                    return
                live.update(self._render(), refresh=True)

    def _rates(self, flows: pd.DataFrame) -> list[float]:
        """Bytes per second of each flow since the last refresh."""
        now = time.monotonic()
        span = max(now - self._last, 1e-3)
        total = (flows["orig_ip_bytes"] + flows["resp_ip_bytes"]).tolist()
        rates = [(b - self._seen.get(int(i), 0)) / span for i, b in zip(flows["flow_id"], total,
                                                                        strict=True)]
        self._seen = {int(i): b for i, b in zip(flows["flow_id"], total, strict=True)}
        self._last = now
        return rates

    def _render(self) -> Any:
        from rich.table import Table

        flows = self.cap.snapshot()
        if len(flows):
            cutoff = pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=RECENT_S)
            flows = flows[(flows["end_reason"] == "open") | (flows["last_ts"] >= cutoff)]
        flows = flows.reset_index(drop=True)
        view = netstat_view(flows, local=self.local, numeric=self.numeric,
                            processes=socket_owners())
        view["Rate"] = self._rates(flows)
        view = view.sort_values("Rate", ascending=False, kind="stable")
        table = Table(title=self._header(flows), title_justify="left", expand=True)
        for name in SHOWN:
            table.add_column(name, justify="right" if name.startswith(("Pkts", "Bytes", "Rate"))
                             else "left", no_wrap=True)
        for row in view[list(SHOWN)].itertuples(index=False):
            table.add_row(*["-" if v is None else f"{v:,.0f} B/s" if i == len(SHOWN) - 1
                            else str(v) for i, v in enumerate(row)])
        return table

    def _header(self, flows: pd.DataFrame) -> str:
        summary = self.cap.summary
        packets = int(flows["orig_pkts"].sum() + flows["resp_pkts"].sum()) if len(flows) else 0
        shown = f"filter '{self.cap.filter}'" if self.cap.filter else "no filter"
        return (f"tracker live on {self.cap.iface}, {shown}: {len(flows)} flows shown, "
                f"{summary.frames if summary else 0:,} frames, {packets:,} packets in them, "
                f"{self.cap.dropped} dropped by the kernel; q quits")
