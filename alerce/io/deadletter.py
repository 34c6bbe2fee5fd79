"""Persist dead letters: a JSON-lines index plus one raw payload file per distinct packet."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

from ..batch import DeadLetter

INDEX_NAME = "dead_letters.jsonl"


def write_dead_letters(dead_letters: Iterable[DeadLetter], directory: str | os.PathLike) -> Path:
    """Append dead letters to ``directory/dead_letters.jsonl`` and store their payloads.

    Each index line is ``{"source", "reason", "payload_file", "payload_size", "time"}``;
    ``payload_file`` (relative to ``directory``) is ``<sha256 prefix>.bin`` or null when the dead
    letter has no payload. Identical payloads are stored once.

    Returns
    -------
    Path
        The index file.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    index = root / INDEX_NAME
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(index, "a", encoding="utf-8") as out:
        for d in dead_letters:
            name = None
            if d.payload is not None:
                name = hashlib.sha256(d.payload).hexdigest()[:32] + ".bin"
                target = root / name
                if not target.exists():
                    tmp = target.with_suffix(".tmp")
                    tmp.write_bytes(d.payload)
                    os.replace(tmp, target)
            out.write(json.dumps({
                "source": d.source, "reason": d.reason, "payload_file": name,
                "payload_size": None if d.payload is None else len(d.payload), "time": now,
            }) + "\n")
    return index


def read_dead_letters(directory: str | os.PathLike) -> list[DeadLetter]:
    """Load dead letters written by :func:`write_dead_letters` (payloads included)."""
    root = Path(directory)
    out = []
    index = root / INDEX_NAME
    if not index.exists():
        return out
    for line in index.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        payload = (root / item["payload_file"]).read_bytes() if item.get("payload_file") else None
        out.append(DeadLetter(item["source"], item["reason"], payload))
    return out
