"""LiveCapture: live flows for notebooks and scripts, captured in a background thread.

>>> with tracker.LiveCapture("eth0", filter="tcp") as cap:    # doctest: +SKIP
...     time.sleep(10)
...     cap.snapshot()          # every flow so far, open ones with end_reason 'open'
>>> cap.flows()                 # after stop: the final flows, open ones 'stopped'

The capture runs the same pipeline and flow table as ``tracker live`` and
``read_flows`` (tracker/sources/live.py, tracker/pipeline.py), in a thread
of its own; a lock keeps ``snapshot()`` from reading the table while a batch
goes through it (at most one poll interval, 0.2 s, of waiting).
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Self

import pandas as pd

from tracker.decode.bpf import BpfFilter
from tracker.errors import TrackerError
from tracker.flows import FlowOptions, FlowRecords
from tracker.pipeline import FlowRun
from tracker.report.flows import flows_dataframe
from tracker.report.netstat import netstat_view
from tracker.sources.live import SNAPLEN, LiveSource
from tracker.sources.record import PcapWriter, Recording


class LiveCapture:
    """Capture on ``iface`` (root or CAP_NET_RAW) with an optional tcpdump ``filter``.

    Options are ``FlowOptions`` fields as keywords, or ``options=``. ``start()``
    opens the capture (the errors of ``tracker live`` are raised here), ``stop()``
    ends it; as a context manager it starts and stops by itself.
    """

    def __init__(self, iface: str, filter: str | None = None, *, snaplen: int = SNAPLEN,
                 duration: float | None = None, count: int | None = None,
                 write: str | None = None, options: FlowOptions | None = None,
                 source: LiveSource | None = None, **kw: Any) -> None:
        self.iface, self.filter, self.snaplen = iface, filter, snaplen
        self.duration, self.count, self.write = duration, count, write
        self._pcap: Any = None
        self._opened = source  # a capture opened already (tracker live prints its banner)
        self.options = FlowOptions.from_keywords(options, "LiveCapture()", ("filter",), **kw)
        self._finished: list[FlowRecords] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._run: FlowRun | None = None
        self._source: LiveSource | None = None
        self.error: TrackerError | OSError | None = None

    def start(self) -> Self:
        """Open the capture and start reading in the background."""
        if self._thread is not None:
            raise RuntimeError("this LiveCapture was started already")
        self._source = self._opened or LiveSource(self.iface, bpf=self.filter,
                                                  snaplen=self.snaplen, duration=self.duration,
                                                  count=self.count)
        source: Any = self._source
        if self.write is not None:  # every frame also to a pcap file, valid at any stop
            self._pcap = open(self.write, "wb")  # noqa: SIM115 - closed by stop()
            source = Recording(self._source, PcapWriter(self._pcap, self._source.linktype,
                                                        self.snaplen))
        leftover = self._source.userspace_filter  # -i any: what the kernel cannot filter
        self._run = FlowRun(source, self.options,
                            bpf=None if leftover is None else BpfFilter(leftover))
        self._thread = threading.Thread(target=self._read, name=f"capture {self.iface}",
                                        daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._run is not None
        batches = iter(self._run)
        try:
            while True:
                with self._lock:  # a batch goes through the table as one step
                    item = next(batches, None)
                    if item is None:
                        return
                    if len(item[2]):
                        self._finished.append(item[2])
        except (TrackerError, OSError) as err:  # kept for the caller: stop() raises it
            self.error = err

    def stop(self) -> pd.DataFrame:
        """End the capture; the final flows (open ones 'stopped'), as ``flows()``."""
        if self._run is not None and self._source is not None and self._thread is not None:
            self._run.stop("stopped", drain=True)
            self._source.stop()
            self._thread.join()
            self._source.close()
            if self._pcap is not None:
                self._pcap.close()
        if self.error is not None:
            raise self.error
        return self.flows()

    def snapshot(self) -> pd.DataFrame:
        """Every flow so far: the finished ones, then the open ones with their current
        counts and states (end_reason 'open')."""
        with self._lock:
            parts = list(self._finished)
            if self._run is not None and self._thread is not None and self._thread.is_alive():
                parts.append(self._run.table.peek())
        return flows_dataframe(FlowRecords.concat(parts))

    def view(self, **view: Any) -> pd.DataFrame:
        """The snapshot in netstat's view, with the process behind each local socket
        (``tracker.netstat_view`` options: ``local``, ``numeric``)."""
        from tracker.processes import socket_owners

        return netstat_view(self.snapshot(), processes=socket_owners(), **view)

    def flows(self) -> pd.DataFrame:
        """The flows that finished so far (after ``stop()``: all of them)."""
        with self._lock:
            return flows_dataframe(FlowRecords.concat(list(self._finished)))

    @property
    def running(self) -> bool:
        """False once the capture ended by itself (duration, count) or was stopped."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def banner(self) -> str:
        """tcpdump's 'listening on ...' line, once started."""
        return "" if self._source is None else self._source.banner()

    @property
    def summary(self) -> Any:
        """The run's RunSummary (frames per status, flows, drops) so far."""
        return None if self._run is None else self._run.summary

    @property
    def dropped(self) -> int:
        """Frames the kernel dropped so far."""
        return 0 if self._source is None else self._source.dropped

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
