"""Errors and warnings of the tracker.

Only file-level and option-level problems raise; a malformed packet never
does (it gets a ``status`` and is counted instead).

Exception tree::

    TrackerError                 base of everything the tracker raises on purpose
    ├── CaptureError             a capture file or stream cannot be read
    │   ├── NotACaptureError     the first bytes are not pcap, pcapng or gzip
    │   └── CorruptCaptureError  a record or block is broken beyond recovery
    ├── OptionError              an option has a bad value (also a ValueError)
    ├── CaptureSourceError       a live interface cannot be opened
    ├── ClusterError             Dask could not finish a file's task (its workers died)
    └── MissingExtraError        an optional extra (plotting, Dask) is not installed

Warning tree::

    TrackerWarning               base of the tracker's warnings
    ├── TruncatedCaptureWarning  the capture ends inside a record; frames before it are kept
    └── TimestampWarning         a timestamp does not fit int64 nanoseconds; it became NaT

An optional extra is imported with a plain ``import`` inside the function that
needs it; when it is missing, that function raises ``MissingExtraError`` naming
the extra and how to install it. Nothing in the package switches a feature off
quietly because a module is missing.

The CLI catches ``TrackerError`` only and prints its message, one line, with a
non-zero exit. Every message names the file (or option) and where and what was
expected, e.g. ``x.pcap: record 12 at byte 4096: captured length 70000 exceeds
snaplen 65535``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class TrackerError(Exception):
    """Base class for the errors the tracker raises on purpose."""


class CaptureError(TrackerError):
    """A capture file or stream cannot be read."""


class NotACaptureError(CaptureError):
    """The input does not start like pcap, pcapng or gzip."""


class CorruptCaptureError(CaptureError):
    """A record or block header is inconsistent and reading cannot go on."""


class OptionError(TrackerError, ValueError):
    """An option or argument has a bad value."""


class CaptureSourceError(TrackerError):
    """A live capture source (interface) cannot be opened."""


class ClusterError(TrackerError):
    """The Dask cluster could not finish a task: its workers died running it (Dask's
    KilledWorker), or the scheduler went away."""


class MissingExtraError(TrackerError, ImportError):
    """An optional extra is not installed; the message says how to install it."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(f"this needs {module}, from the optional extra {extra!r}: "
                         f"pip install 'socket-pair-tracker[{extra}]' (./run setup installs "
                         "every extra)")
        self.extra = extra


class TrackerWarning(UserWarning):
    """Base class for the tracker's warnings."""


class TruncatedCaptureWarning(TrackerWarning):
    """The capture ends inside a record; everything before it is kept."""


class TimestampWarning(TrackerWarning):
    """A timestamp beyond what int64 nanoseconds hold became NaT."""


def unknown_option(name: str, known: Iterable[str], where: str) -> OptionError:
    """The error for a misspelled option: the name, a close match, and every known one."""
    import difflib  # only on this error path: tracker's import stays light

    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return OptionError(f"{where}: unknown option {name!r}{hint}; known: {', '.join(known)}")


def options_checked(fn: F) -> F:
    """Make a misspelled keyword of a public function an OptionError, not a TypeError.

    Functions that take ``**options`` check those names themselves.
    """
    import inspect

    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return fn
    known = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]

    @functools.wraps(fn)
    def checked(*args: Any, **kw: Any) -> Any:
        for name in kw:
            if name not in known:
                raise unknown_option(name, known, f"{fn.__name__}()")
        return fn(*args, **kw)

    return checked  # type: ignore[return-value]
