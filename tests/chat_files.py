"""Small valid chat-format training files for tests that need one to upload or train on."""

from __future__ import annotations

import json
from pathlib import Path


def write_singer_jsonl(path: Path, examples: int) -> Path:
    """``examples`` distinct one-table text-to-SQL chat examples, one JSON object per line."""
    with path.open("w", encoding="utf-8") as stream:
        for n in range(examples):
            stream.write(json.dumps({"messages": [
                {"role": "system", "content": "CREATE TABLE singer (id INTEGER, name TEXT);"},
                {"role": "user", "content": f"What is the name of singer {n}?"},
                {"role": "assistant", "content": f"SELECT name FROM singer WHERE id = {n}"},
            ]}) + "\n")
    return path
