"""Socket-pair flows with Zeek's connection states: ``FlowTable`` and its ``FlowOptions``.

>>> from tracker.flows import FlowTable, FlowOptions
>>> FlowTable(FlowOptions(max_open_flows=100_000)).open_flows
0
"""

from tracker.flows.options import FlowOptions
from tracker.flows.records import FlowRecords
from tracker.flows.table import FlowTable

__all__ = ["FlowOptions", "FlowRecords", "FlowTable"]
