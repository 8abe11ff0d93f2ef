"""Errors and warnings of the tracker.

Only file-level and option-level problems raise; a malformed packet never
does (it gets a ``status`` and is counted instead).

Exception tree::

    TrackerError                 base of everything the tracker raises on purpose
    ├── CaptureError             a capture file or stream cannot be read
    │   ├── NotACaptureError     the first bytes are not pcap, pcapng or gzip
    │   └── CorruptCaptureError  a record or block is broken beyond recovery
    ├── OptionError              an option has a bad value (also a ValueError)
    └── CaptureSourceError       a live interface cannot be opened

Warning tree::

    TrackerWarning               base of the tracker's warnings
    ├── TruncatedCaptureWarning  the capture ends inside a record; frames before it are kept
    └── TimestampWarning         a timestamp does not fit int64 nanoseconds; it became NaT

The CLI catches ``TrackerError`` only and prints its message, one line, with a
non-zero exit. Every message names the file (or option) and where and what was
expected, e.g. ``x.pcap: record 12 at byte 4096: captured length 70000 exceeds
snaplen 65535``.
"""

from __future__ import annotations


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


class TrackerWarning(UserWarning):
    """Base class for the tracker's warnings."""


class TruncatedCaptureWarning(TrackerWarning):
    """The capture ends inside a record; everything before it is kept."""


class TimestampWarning(TrackerWarning):
    """A timestamp beyond what int64 nanoseconds hold became NaT."""
