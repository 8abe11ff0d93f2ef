"""Zeek's connection history string, compiled (``Conn.h`` CheckHistory, ``Conn.cc``).

Letters are appended to ``hist[slot]``; ``conn[slot, C_HIST_SEEN]`` is Zeek's
``hist_seen`` bit set. Zeek does not swap those bits when it flips the roles of
a connection, and neither do we.
"""

from __future__ import annotations

import numpy as np

from tracker.flows.layout import C_HIST_LEN, C_HIST_SEEN, HIST_MAX
from tracker.jit import kernel, kernel_inline

HIST_TCP_RESP_SHIFT = 16  # TCP_Endpoint::CheckHistory: responder bits are shifted by 16


@kernel_inline
def add_history(conn: np.ndarray, hist: np.ndarray, slot: int, code: int) -> None:
    """Connection::AddHistory: append one letter."""
    n = conn[slot, C_HIST_LEN]
    if n < HIST_MAX:
        hist[slot, n] = code
    conn[slot, C_HIST_LEN] = n + 1


@kernel_inline
def check_history(conn: np.ndarray, hist: np.ndarray, slot: int, mask: int, code: int) -> bool:
    """Connection::CheckHistory: add ``code`` the first time ``mask`` is seen.

    Returns True when the bit was already set (Zeek's convention).
    """
    seen = conn[slot, C_HIST_SEEN]
    if seen & mask == 0:
        conn[slot, C_HIST_SEEN] = seen | mask
        add_history(conn, hist, slot, code)
        return False
    return True


@kernel_inline
def lower(code: int) -> int:
    """ASCII lower case (responder letters)."""
    if 65 <= code <= 90:
        return code + 32
    return code


@kernel
def scaled_entry(conn: np.ndarray, hist: np.ndarray, slot: int, counts: np.ndarray,
                 row: int, cnt_col: int, thr_col: int, code: int) -> None:
    """Connection::ScaledHistoryEntry: add ``code`` at the 1st, 10th, 100th, ... event.

    The counter and threshold are uint32 in Zeek; a threshold that would wrap
    stays and the counter restarts (Conn.cc).
    """
    cnt = counts[row, cnt_col] + 1
    thr = counts[row, thr_col]
    if thr == 0:
        thr = 1  # thresholds start at 1 (TCP_Endpoint constructor)
    if cnt == thr:
        add_history(conn, hist, slot, code)
        new_thr = (thr * 10) & 0xFFFFFFFF
        if new_thr <= thr:
            cnt = 0
        else:
            thr = new_thr
    counts[row, cnt_col] = cnt
    counts[row, thr_col] = thr
