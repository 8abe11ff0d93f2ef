"""Finished flows gathered into chunks: one DataFrame per chunk, not per batch.

Building a DataFrame costs about 5 ms, so the writers take flows gathered
until ``rows`` flows or ``seconds`` of wall time, whichever comes first; a
batch that ends very many flows at once (a SYN flood under the open-flow cap
ends one per packet) is cut into chunks of ``rows``, since one DataFrame and
its text cost about 2 KB a flow.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from tracker.flows import FlowRecords


def _gathered(finished: Iterable[FlowRecords], *, rows: int, seconds: float
              ) -> Iterator[FlowRecords]:
    parts: list[FlowRecords] = []
    pending, last = 0, time.monotonic()
    first = True
    for ended in finished:
        parts.append(ended)
        pending += len(ended)
        if first or pending >= rows or time.monotonic() - last >= seconds:
            yield FlowRecords.concat(parts)
            parts, pending, last, first = [], 0, time.monotonic(), False
    if parts:
        yield FlowRecords.concat(parts)


def chunks(finished: Iterable[FlowRecords], *, rows: int = 10_000, seconds: float = 1.0
           ) -> Iterator[FlowRecords]:
    """Chunks of at most ``rows`` flows, in the order the flows finished."""
    for records in _gathered(finished, rows=rows, seconds=seconds):
        if len(records) <= rows:
            yield records
            continue
        for start in range(0, len(records), rows):
            yield records.take(slice(start, start + rows))
