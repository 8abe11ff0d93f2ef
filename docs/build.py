#!/usr/bin/env python3
"""Rewrite the generated reference of docs/flow-record.md from tracker/report/columns.py.

    .venv/bin/python docs/build.py          # rewrite it
    .venv/bin/python docs/build.py --check  # exit 1 if it is out of date (the tests do this)
"""

from __future__ import annotations

import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parent / "flow-record.md"
START, END = "<!-- generated: start -->", "<!-- generated: end -->"


def rebuilt(text: str) -> str:
    """The page with the text between the markers made anew."""
    from tracker.report.columns import markdown

    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{markdown()}\n{END}{tail}"


def main() -> int:
    text = PAGE.read_text("utf-8")
    new = rebuilt(text)
    if "--check" in sys.argv[1:]:
        return 0 if new == text else 1
    PAGE.write_text(new, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
