"""BENCH_KEEP=DIR: keep the seeded cluster between runs and reuse it (scripts/bench).

Seeding a million mailboxes takes minutes; measuring a change before and after is fairer
on the same data, back to back. What a later run needs besides the cluster (the keys the
credentials are encrypted with, the seeded counts) is kept in DIR/bench-state.json,
readable by its owner only. A run with another SIZE seeds again from scratch is refused:
start with another DIR instead.
"""

import json
import os
from pathlib import Path


def _path() -> Path | None:
    directory = os.environ.get("BENCH_KEEP", "").strip()
    return Path(directory) / "bench-state.json" if directory else None


def load() -> dict:
    """What the kept cluster was seeded with, or {} (no BENCH_KEEP, or not seeded yet)."""
    path = _path()
    if path is None or not path.exists():
        return {}
    return json.loads(path.read_text())


def save(state: dict) -> None:
    path = _path()
    if path is None:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(state, file)
