"""Figures of flows and packets DataFrames, on matplotlib (the optional extra ``plot``).

Each function takes a frame from ``read_flows`` (or ``read_packets``), draws on
``ax`` (a new figure when None) and returns the Axes, so a notebook can adjust
or combine them. Colours are the Okabe-Ito palette, which stays distinct for
colour-blind readers; axes say what they measure and in which unit.

>>> import tracker, tracker.plot                                    # doctest: +SKIP
>>> flows = tracker.read_flows("captures/tcp-port-reuse.pcap")      # doctest: +SKIP
>>> tracker.plot.flow_timeline(flows)                               # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tracker.errors import MissingExtraError

# Okabe & Ito (2008), "Color Universal Design": distinct under every common colour-blindness.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
             "#000000")
STATE_COLOURS = {"SF": "#009E73", "S1": "#0072B2", "S0": "#E69F00", "REJ": "#D55E00",
                 "RSTO": "#CC79A7", "RSTR": "#CC79A7", "OTH": "#999999"}


def _axes(ax: Any, size: tuple[float, float] = (8, 4)) -> Any:
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as missing:
        raise MissingExtraError("plot", "matplotlib") from missing
    return plt.subplots(figsize=size, layout="constrained")[1]


def _time_axis(ax: Any) -> None:
    """Dates on x, labelled as briefly as the span allows (matplotlib's concise format)."""
    import matplotlib.dates as mdates

    ax.xaxis_date()
    locator = mdates.AutoDateLocator(minticks=4, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel("time (UTC)")


def _byte_axis(axis: Any) -> None:
    """Byte counts as people read them (12 kB, 2.5 MB), not as 2.5 with a 1e6 offset."""
    from matplotlib.ticker import EngFormatter

    axis.set_major_formatter(EngFormatter(unit="B"))


def _endpoint(addr: pd.Series, port: pd.Series) -> pd.Series:
    text = addr.astype(str)
    text = text.where(~text.str.contains(":", regex=False), "[" + text + "]")
    return text + ":" + port.astype(str)


def _bytes(flows: pd.DataFrame) -> pd.Series:
    return (flows["orig_ip_bytes"] + flows["resp_ip_bytes"]).astype(np.int64)


def flow_timeline(flows: pd.DataFrame, *, ax: Any = None, limit: int = 40) -> Any:
    """One bar per flow from its first to its last packet, coloured by conn_state.

    The first ``limit`` flows by start time, labelled ``orig -> resp``. A bar is
    at least 1/300 of the time shown wide, so that a one-packet flow still shows.

    >>> ax = flow_timeline(tracker.read_flows("captures/tcp-port-reuse.pcap"))  # doctest: +SKIP
    """
    import matplotlib.dates as mdates
    from matplotlib.patches import Patch

    ax = _axes(ax, (9, max(2.5, 0.25 * min(limit, len(flows)) + 1)))
    shown = flows.sort_values(["first_ts", "flow_id"]).head(limit).reset_index(drop=True)
    start = mdates.date2num(shown["first_ts"].dt.tz_localize(None))
    width = (shown["last_ts"] - shown["first_ts"]).dt.total_seconds().to_numpy() / 86400
    span = float(np.max(start + width) - np.min(start)) if len(shown) else 0.0
    colours = [STATE_COLOURS.get(str(s), "#56B4E9") for s in shown["conn_state"]]
    ax.barh(np.arange(len(shown)), np.maximum(width, span / 300 or 1e-9), left=start,
            color=colours, height=0.6)
    ax.use_sticky_edges = False  # bars stick to the frame otherwise, hiding the first ones
    ax.margins(x=0.03)
    ax.set_yticks(np.arange(len(shown)),
                  labels=(shown["proto"].astype(str) + " " +
                          _endpoint(shown["orig_addr"], shown["orig_port"]) + " → " +
                          _endpoint(shown["resp_addr"], shown["resp_port"])).tolist(),
                  fontsize=8)
    ax.invert_yaxis()
    _time_axis(ax)
    ax.set_title("flows over time, coloured by conn_state")
    handles = [Patch(color=STATE_COLOURS.get(state, "#56B4E9"), label=state)
               for state in dict.fromkeys(str(s) for s in shown["conn_state"])]
    ax.legend(handles=handles, title="conn_state", fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1))  # beside the bars, never over them
    return ax


def bytes_over_time(packets: pd.DataFrame, *, freq: str = "1s", ax: Any = None) -> Any:
    """IP bytes per time bin of a packets frame (``read_packets``), as a step line.

    >>> ax = bytes_over_time(tracker.read_packets("x.pcap"), freq="10s")  # doctest: +SKIP
    """
    ax = _axes(ax)
    rows = packets.dropna(subset=["ip_len"])
    series = rows.set_index(rows["ts"].dt.tz_localize(None))["ip_len"].astype(np.int64)
    binned = series.resample(freq).sum()
    edges = binned.index.append(binned.index[-1:] + pd.Timedelta(freq)) if len(binned) else \
        binned.index
    import matplotlib.dates as mdates

    # One step per bin, the last one as wide as the others.
    ax.stairs(binned.to_numpy(), mdates.date2num(edges), color=OKABE_ITO[0], linewidth=1.5)
    _time_axis(ax)
    _byte_axis(ax.yaxis)
    ax.set_ylabel(f"IP bytes per {freq}")
    ax.set_title("traffic over time")
    ax.set_ylim(bottom=0)
    return ax


def top_talkers(flows: pd.DataFrame, n: int = 10, *, ax: Any = None) -> Any:
    """The ``n`` addresses that sent plus received the most IP bytes, as bars.

    >>> ax = top_talkers(tracker.read_flows("x.pcap"), n=5)           # doctest: +SKIP
    """
    from tracker.report.summarize import top_talkers as table

    ax = _axes(ax, (8, max(2.5, 0.35 * n + 1)))
    top = table(flows, n=n)
    ax.barh(top["addr"].astype(str), top["bytes"], color=OKABE_ITO[0])
    ax.invert_yaxis()
    _byte_axis(ax.xaxis)
    ax.set_xlabel("IP bytes sent and received")
    ax.set_title(f"top {len(top)} talkers")
    return ax


def bytes_by_service(flows: pd.DataFrame, *, ax: Any = None, limit: int = 15) -> Any:
    """IP bytes per (proto, service), the largest ``limit``; unnamed ports as 'other'.

    >>> ax = bytes_by_service(tracker.read_flows("x.pcap"))           # doctest: +SKIP
    """
    ax = _axes(ax)
    key = flows["proto"].astype(str) + "/" + flows["service"].astype(object).fillna("other")
    per = _bytes(flows).groupby(key.to_numpy()).sum().sort_values(ascending=False).head(limit)
    ax.barh(per.index.astype(str), per.to_numpy(), color=OKABE_ITO[1])
    ax.invert_yaxis()
    _byte_axis(ax.xaxis)
    ax.set_xlabel("IP bytes")
    ax.set_title("bytes per service (a guess from the responder's port)")
    return ax


def bytes_by_port_class(flows: pd.DataFrame, *, ax: Any = None) -> Any:
    """IP bytes per IANA port class of the responder port (well-known, registered, dynamic).

    >>> ax = bytes_by_port_class(tracker.read_flows("x.pcap"))        # doctest: +SKIP
    """
    ax = _axes(ax, (6, 3))
    classes = ["well_known", "registered", "dynamic"]
    per = _bytes(flows).groupby(flows["port_class"].astype(object).to_numpy()).sum()
    values = [int(per.get(c, 0)) for c in classes]
    ax.bar(classes, values, color=[OKABE_ITO[0], OKABE_ITO[1], OKABE_ITO[2]])
    ax.set_xticks(range(3), labels=["well-known\n0-1023", "registered\n1024-49151",
                                    "dynamic\n49152-65535"])
    _byte_axis(ax.yaxis)
    ax.set_ylabel("IP bytes")
    ax.set_xlabel("port class of the responder port (IANA ranges)")
    ax.set_title("bytes per port class")
    return ax


def host_matrix(flows: pd.DataFrame, *, ax: Any = None, limit: int = 12) -> Any:
    """A heat map of IP bytes from each originator (rows) to each responder (columns),
    for the ``limit`` busiest addresses of each side.

    >>> ax = host_matrix(tracker.read_flows("x.pcap"), limit=8)       # doctest: +SKIP
    """
    ax = _axes(ax, (8, 6))
    frame = pd.DataFrame({"orig": flows["orig_addr"].astype(str),
                          "resp": flows["resp_addr"].astype(str), "bytes": _bytes(flows)})
    rows = frame.groupby("orig")["bytes"].sum().nlargest(limit).index
    cols = frame.groupby("resp")["bytes"].sum().nlargest(limit).index
    grid = frame[frame["orig"].isin(rows) & frame["resp"].isin(cols)].pivot_table(
        index="orig", columns="resp", values="bytes", aggfunc="sum", fill_value=0)
    grid = grid.reindex(index=rows, columns=cols, fill_value=0)
    from matplotlib.colors import LogNorm

    # A log scale: one busy pair would otherwise leave every other cell the same colour.
    values = np.ma.masked_equal(grid.to_numpy(), 0)
    low, high = (int(values.min()), int(values.max())) if values.count() else (1, 2)
    image = ax.imshow(values, cmap="cividis", aspect="auto",
                      norm=LogNorm(vmin=low, vmax=max(high, low + 1)))
    _label_cells(ax, values, image)
    ax.set_xticks(np.arange(len(cols)), labels=list(cols), rotation=45, ha="right", fontsize=8)
    ax.set_yticks(np.arange(len(rows)), labels=list(rows), fontsize=8)
    ax.set_xlabel("responder")
    ax.set_ylabel("originator")
    ax.set_title("IP bytes between hosts")
    bar = ax.figure.colorbar(image, ax=ax, label="IP bytes (log scale; blank: none)")
    _byte_axis(bar.ax.yaxis)
    return ax


def _label_cells(ax: Any, values: np.ma.MaskedArray, image: Any) -> None:
    """Write each non-empty cell's bytes in it, dark on the light colours, light on dark."""
    from matplotlib.ticker import EngFormatter

    words = EngFormatter(unit="B", places=0)
    for (row, col), value in np.ndenumerate(values.filled(0)):
        if value:
            light = sum(image.cmap(image.norm(value))[:3]) > 1.5
            ax.text(col, row, words(value), ha="center", va="center", fontsize=8,
                    color="black" if light else "white")


def state_sequence(packets: pd.DataFrame, flow_ids: list[int], *, ax: Any = None) -> Any:
    """Each TCP packet of a few flows on a time axis, a row per flow, marked with its flags
    as tcpdump writes them (S, S., ., P., F., R); above the row's line: from the flow's
    first sender, below: from the other side.

    >>> ax = state_sequence(tracker.read_packets("x.pcap"), [0, 1])   # doctest: +SKIP
    """
    from tracker.report.print_packets import tcpdump_flags

    ax = _axes(ax, (9, 1.2 * max(1, len(flow_ids)) + 1))
    for row, fid in enumerate(flow_ids):
        mine = packets[packets["flow_id"] == fid]
        if mine.empty:
            continue
        first = mine["src_addr"].astype(str).iloc[0]
        t = mine["ts"].dt.tz_localize(None)
        ahead = (mine["src_addr"].astype(str) == first).to_numpy()
        y = row + np.where(ahead, -0.2, 0.2)
        ax.scatter(t, y, c=np.where(ahead, OKABE_ITO[0], OKABE_ITO[1]), s=14)
        for when, height, flags in zip(t, y, mine["tcp_flags"].fillna(0).astype(int),
                                       strict=True):
            ax.annotate(tcpdump_flags(flags), (when, height), fontsize=7, ha="left", va="center",
                        xytext=(4, 0), textcoords="offset points")
    ax.set_yticks(range(len(flow_ids)), labels=[f"flow {f}" for f in flow_ids])
    ax.set_ylim(-0.6, len(flow_ids) - 0.4)
    ax.invert_yaxis()
    _time_axis(ax)
    ax.set_title("TCP flags of each packet (blue: first sender, orange: the other side)")
    return ax
