"""Parts of a capture walked in parallel, then stitched into the sequential flows.

A flow's state depends only on its own packets and on time (network time: the newest
packet time seen). So a part of a capture walked from an empty table (``walk_alone``,
in parallel with the other parts) has exactly the sequential read's flows for every
5-tuple that had no flow open where the part starts. ``stitch`` completes the others:
it takes the open state the previous part left (``previous``), replays the part's rows
of those 5-tuples from it, with every other row as a clock tick (time moves and timers
fire at the same rows as in the sequential walk), drops the alone walk's flows of those
5-tuples, and merges both sets of ended flows into the sequential order: by the row that
ended each flow, timers before the row itself, in the order they fire (due time, then
flow creation: flows/store.py). The stitched table
goes on to the next part. About a quarter of a part's rows are replayed on the
generated captures of benchmarks/RESULTS.md.

A part is walked from the carried state instead, as the sequential read would (exact,
slower), when the shortcut's conditions do not hold:

- a batch of the part needs the table's state before the walk (fragments to reassemble,
  tunnels to open: FlowTable.prepare_batch refuses it), or the previous table holds
  pending fragments or has seen tunnels;
- an open-flow cap (evictions depend on every flow);
- the previous part's network time is past this part's first packet time.

While walked alone and replayed, new flows are named by their first row (FlowTable.
number_rows), which orders them by creation in both tables; the stitched part then
numbers its new flows on from the carried table's counter in that order, as the
sequential read does: the flow ids are the sequential read's too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tracker.flows import layout as L
from tracker.flows.options import FlowOptions
from tracker.flows.records import FlowRecords
from tracker.flows.table import FlowTable, KernelBatch, joined_state, restricted


@dataclass
class Alone:
    """A part walked from an empty table: the flows that ended in it, where each ended
    (FlowTable.ends), the open state at its end, and its first packet time."""

    ended: FlowRecords
    ends: np.ndarray
    state: dict[str, Any]
    first_ts: int | None


def walk_alone(batches: Iterable[KernelBatch], options: FlowOptions) -> Alone | None:
    """The part's rows walked from an empty table, or None when a stitch cannot use it
    (an open-flow cap). ``batches`` are taken one at a time (a part may be several files)."""
    if options.max_open_flows is not None:
        return None
    table = FlowTable(options)
    table.number_rows()
    ended: list[FlowRecords] = []
    first: int | None = None
    for kb in batches:
        if first is None and len(kb.rows):
            first = int(kb.pi[L.P_TS, 0])
        ended.append(table.update_prepared(kb))
    return Alone(FlowRecords.concat(ended), _ends(table), table.open_state(), first)


def first_part(alone: Alone) -> tuple[FlowRecords, dict[str, Any]]:
    """The first part's ended flows and open state: its alone walk, flows numbered."""
    return renumbered(alone.ended, alone.state)


def stitch(previous: FlowTable, batches: Iterable[KernelBatch], alone: Alone
           ) -> tuple[FlowRecords, dict[str, Any]]:
    """The part's ended flows in the sequential order and the open state to go on with
    (FlowTable.open_state's), from the ``previous`` part's table (changed: replayed over
    this part) and the part walked alone."""
    carried = previous.key_set()
    previous.number_rows()
    replayed = FlowRecords.concat(
        [previous.update_prepared(kb, tick=~carried.contains(kb.pk)) for kb in batches])
    mine = ~carried.contains(alone.ends[:, 2:])
    flows = FlowRecords.concat([alone.ended.take(np.flatnonzero(mine)), replayed])
    ends = np.concatenate([alone.ends[mine], _ends(previous)])
    # Timers fire in (due time, flow creation) order (flows/store.py), before the row.
    order = np.lexsort((flows.flow_id, ends[:, 1], ends[:, 0]))
    own = restricted(alone.state, ~carried.contains(alone.state["keys"]))
    return renumbered(flows.take(order), joined_state(previous.open_state(), own))


def renumbered(flows: FlowRecords, state: dict[str, Any]) -> tuple[FlowRecords, dict[str, Any]]:
    """The flows named by row (ROW_ID + row) in ``flows`` and the open ``state``
    numbered on from the state's counter, in the order of their rows (of creation); the
    state counts rows no more."""
    conn, g = state["conn"].copy(), state["g"].copy()
    ids = conn[:, L.C_FLOW_ID]
    created = np.unique(np.concatenate([flows.flow_id[flows.flow_id >= L.ROW_ID],
                                        ids[ids >= L.ROW_ID]]))
    start = int(g[L.G_NEXT_ID])

    def number(values: np.ndarray) -> np.ndarray:
        row = values >= L.ROW_ID
        return np.where(row, start + np.searchsorted(created, values), values)

    conn[:, L.C_FLOW_ID] = number(ids)
    heap = state["heap"].copy()
    heap[:, 3] = number(heap[:, 3])
    g[L.G_NEXT_ID] = start + len(created)
    g[L.G_ROW_IDS] = 0
    out = flows.take(slice(None))
    out.flow_id = number(flows.flow_id)
    return out, {**state, "conn": conn, "heap": heap, "g": g}


def can_stitch(previous: FlowTable, alone: Alone | None) -> bool:
    """Whether the part after ``previous`` may be stitched (the module's conditions)."""
    if alone is None or previous.waiting:
        return False
    now = previous.network_time
    return now is None or alone.first_ts is None or now <= alone.first_ts


def _ends(table: FlowTable) -> np.ndarray:
    """The table's ``ends`` as one (n, 7) int64 array."""
    return np.concatenate(table.ends) if table.ends else np.zeros((0, 7), dtype=np.int64)
