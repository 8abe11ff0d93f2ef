"""Shared test fixtures: where the repo, its captures and the shared corpus are."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "captures"
CORPUS = REPO.parent / "shared" / "corpus"


def corpus_traces() -> list[Path]:
    """Every capture in the shared corpus (empty when the corpus is absent)."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.glob("*/*/trace.pcap*"))


def need_corpus() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is absent: expected it at {CORPUS}")
