"""The flows DataFrame, built from FlowRecords columns; the columns are documented in columns.py."""

from __future__ import annotations

import pandas as pd

from tracker.flows.records import FlowRecords
from tracker.report.columns import DURATION, FLOW_COLUMNS, TIME, Column
from tracker.report.flow_columns import Coded, Masked, Values, flow_columns


def _categorical(coded: Coded) -> pd.Categorical:
    """A Categorical of the names in their order (code -1 is <NA>): a fixed list of
    values as pandas' strings, names found in the data as objects."""
    names = coded.names if coded.fixed else pd.Index(coded.names, dtype=object)
    return pd.Categorical.from_codes(coded.codes, categories=names)


def _series(column: Column, values: Values) -> object:
    """One column of flow_columns as pandas holds it (the column's documented dtype)."""
    if isinstance(values, Coded):
        return _categorical(values)
    if isinstance(values, Masked):
        return pd.arrays.IntegerArray(values.values, values.missing.copy())
    if column.dtype == TIME:
        return pd.to_datetime(values.view("datetime64[ns]")).tz_localize("UTC")
    if column.dtype == DURATION:
        return pd.to_timedelta(values.view("timedelta64[ns]"))
    return values


def flows_dataframe(records: FlowRecords) -> pd.DataFrame:
    """One row per flow, with the columns of ``FLOW_COLUMNS`` in that order.

    No flows gives an empty frame with the same columns and dtypes.

    Examples
    --------
    >>> df = flows_dataframe(records)  # doctest: +SKIP
    >>> df[["orig_addr", "orig_port", "resp_addr", "resp_port", "conn_state", "history"]]
    ... # doctest: +SKIP
         orig_addr  orig_port    resp_addr  resp_port conn_state   history
    0  192.168.1.5       1099  192.168.1.7         80         SF  ShADadFf
    """
    cols = flow_columns(records)
    return pd.DataFrame({c.name: _series(c, cols[c.name]) for c in FLOW_COLUMNS})
