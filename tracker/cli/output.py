"""Output that never lies: a file is complete or untouched, and never an input.

``-o FILE`` is written to a temporary file in FILE's folder and renamed over
FILE only when the command finished writing (``os.replace`` is atomic on one
file system). Whatever stops the command before that removes the temporary
file and leaves an existing FILE as it was. An existing FILE that is not a
regular file (``/dev/null``, a FIFO, a terminal) is written as it is: renaming
over it would replace the device itself.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import BinaryIO

from tracker.errors import OptionError


def refuse_inputs(output: str | None, inputs: Sequence[str]) -> None:
    """An OptionError when ``output`` names one of the ``inputs`` (never overwrite a capture)."""
    if output in (None, "-"):
        return
    out = os.path.realpath(output)  # type: ignore[arg-type]
    for name in inputs:
        if name == "-":
            continue
        same = os.path.realpath(name) == out or (
            os.path.exists(name) and os.path.exists(out) and os.path.samefile(name, out))
        if same:
            raise OptionError(f"-o {output}: that is an input; the output must be another file")


def names_folder(path: str | None) -> bool:
    """Whether ``-o`` names a folder: one that exists, or a new one (a name ending in /)."""
    return path not in (None, "-") and (os.path.isdir(path)  # type: ignore[arg-type]
                                        or path.endswith(os.sep))  # type: ignore[union-attr]


@contextmanager
def output_file(path: str | None) -> Iterator[BinaryIO]:
    """Standard output for None or '-', else a temporary file renamed to ``path`` on success."""
    if path in (None, "-"):
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    if names_folder(path):
        raise OSError(errno.EISDIR, "a folder, where this output is one file (a folder "
                      "takes tracker read's Parquet dataset, --format parquet)", path)
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):  # type: ignore[arg-type]
        with open(path, "wb") as device:  # type: ignore[arg-type]
            yield device
        return
    folder = os.path.dirname(os.path.abspath(path))  # type: ignore[arg-type]
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part",  # type: ignore[arg-type]
                                   dir=folder)
    except OSError as exc:  # name the output asked for, not the hidden file beside it
        raise OSError(exc.errno, f"cannot write the output there: {exc.strerror}", path) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, path)  # type: ignore[arg-type]
    except BaseException:
        os.unlink(tmp)
        raise
