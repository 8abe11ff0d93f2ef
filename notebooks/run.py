#!/usr/bin/env python3
"""Execute the notebooks in place, as `./run notebooks` does, so their outputs are current.

    .venv/bin/python notebooks/run.py [NOTEBOOK ...]      # default: every notebooks/*.ipynb

Each runs top to bottom in a fresh kernel of this interpreter, from the notebooks/ folder
(the paths in the notebooks are relative to it); figures are stored as inline PNG images.
A cell that fails, or prints anything on stderr (a warning), stops with its error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def execute(path: Path, *, write: bool) -> list[str]:
    """Run one notebook; returns what its cells printed on stderr (warnings)."""
    import nbformat
    from nbclient import NotebookClient

    book = nbformat.read(path, as_version=4)
    # The kernel is this interpreter (the project's venv), whatever PATH says.
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    NotebookClient(book, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    if write:
        nbformat.write(book, path)
    return [out.get("text", "") for cell in book.cells for out in cell.get("outputs", [])
            if out.get("name") == "stderr"]


def main() -> int:
    paths = [Path(p) for p in sys.argv[1:]] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        warned = execute(path, write=True)
        print(f"{path.name}: executed" + (f"; stderr: {warned}" if warned else ""))
        if warned:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
