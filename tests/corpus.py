"""Where the third-party test data lives: ``../shared/corpus`` beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def corpus_dir(name: str) -> Path:
    """A corpus folder; tests that need it skip, saying why, when the corpus is absent."""
    path = CORPUS / name
    if not path.is_dir():
        pytest.skip(f"the third-party corpus {path} is not present")
    return path


def corpus_files(name: str, pattern: str) -> list[Path]:
    """Files of a corpus folder for parametrisation (empty when the corpus is absent)."""
    path = CORPUS / name
    return sorted(path.glob(pattern)) if path.is_dir() else []
