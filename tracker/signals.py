"""Ctrl-C (SIGINT) handled one way for a while: the one place that sets and restores it."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Handler = Callable[[int, Any], Any] | int


@contextmanager
def sigint(handler: Handler) -> Iterator[None]:
    """SIGINT handled by ``handler`` (a function, or signal.SIG_IGN) inside the block, the
    handler before it afterwards. Outside the main thread, where Python sets no handler,
    nothing changes. A handler set outside Python (an embedding program) reads as None
    and cannot be set back: the default takes its place."""
    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave Ctrl-C alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
