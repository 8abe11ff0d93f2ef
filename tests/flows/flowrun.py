"""Run hand-written segments through a FlowTable and get the flows DataFrame."""

from __future__ import annotations

import pandas as pd
from segments import Seg, batch

from tracker.flows import FlowOptions, FlowRecords, FlowTable
from tracker.report.flows import flows_dataframe

# A client and a server; 80/tcp is a likely server port in Zeek's default set.
C = "10.0.0.1:40000 > 10.0.0.2:80"
S = "10.0.0.2:80 > 10.0.0.1:40000"
ISN_C, ISN_S = 100, 500  # initial sequence numbers of client and server


def flows(segs: list[Seg], options: FlowOptions | None = None, *, size: int = 0
          ) -> pd.DataFrame:
    """Flows of the segments (in batches of ``size`` rows; 0 = one batch), flushed at the end."""
    table = FlowTable(options or FlowOptions())
    step = size or max(len(segs), 1)
    parts = [table.update(batch(segs[a:a + step], first_record=a))
             for a in range(0, len(segs), step)]
    return flows_dataframe(FlowRecords.concat([*parts, table.flush()]))


def one(segs: list[Seg], options: FlowOptions | None = None) -> pd.Series:
    """The single flow of the segments."""
    df = flows(segs, options)
    assert len(df) == 1, df[["orig_addr", "orig_port", "history"]]
    return df.iloc[0]
