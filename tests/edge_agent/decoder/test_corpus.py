"""Every DBC of cantools' own test set decodes exactly as cantools decodes it."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import cantools
import numpy as np
import pytest

from edge_agent.decoder import BatchDecoder, UnsupportedSignalError
from tests.corpus import corpus_dir, corpus_files

from .oracle import compare, flags_for, steer_multiplexers

DBC_FILES = corpus_files("cantools-dbc", "*.dbc")


def _load(path: Path) -> tuple[Any, bool]:
    """The database and whether it loads strictly; (None, False) where cantools cannot."""
    for strict in (True, False):
        try:
            return cantools.database.load_file(path, strict=strict), strict
        except Exception:
            continue
    return None, False


@pytest.mark.parametrize("path", DBC_FILES, ids=[p.name for p in DBC_FILES])
def test_corpus_dbc_decodes_like_cantools(path: Path) -> None:
    db, strict = _load(path)
    if db is None:
        return  # cantools cannot load it either: nothing to compare against
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    frames = []
    for message in db.messages:
        if message.is_container or not message.signals:
            continue
        for variant in range(24):
            length = message.length
            if variant % 8 == 6 and length > 0:
                length = int(rng.integers(0, length))  # truncated
            elif variant % 8 == 7:
                length = min(64, length + int(rng.integers(1, 8)))  # excess bytes
            payload = bytearray(rng.integers(0, 256, length, dtype=np.uint8).tobytes())
            steer_multiplexers(message, payload, rng)
            frames.append((message, message.frame_id, flags_for(message), bytes(payload)))
    if not frames:
        return
    try:
        compared, refused = compare(db, frames)
    except UnsupportedSignalError as exc:
        pytest.fail(f"{path.name}: {exc}")
    # Files that load only leniently (overlapping signals, signals beyond the message) may
    # make cantools refuse every frame; a strictly valid one never does.
    assert compared > 0 if strict else compared > 0 or refused == len(frames)


def test_all_corpus_databases_compile() -> None:
    files = sorted(corpus_dir("cantools-dbc").glob("*.dbc"))
    loaded = [db for db, _ in map(_load, files) if db is not None]
    assert len(loaded) >= 70
    for db in loaded:
        BatchDecoder(db)
