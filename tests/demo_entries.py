"""The bundled demo splits as plain entries ({db_id, question, query}), whatever their form."""

from __future__ import annotations

import json

from tui.core.data.datasets import files_for_split
from tui.core.paths import demo_dir


def demo_entries(split: str) -> list[dict[str, str]]:
    """Every entry of the demo split, in file order (train.json is a list, dev.jsonl lines)."""
    entries: list[dict[str, str]] = []
    for path in files_for_split(demo_dir(), split):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            entries += [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            entries += json.loads(text)
    return entries
