"""The server's key file: created once per folder, even when processes race to create it."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from tui.server.auth import key_path, load_or_create_key


def _load(folder: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(load_or_create_key(Path(folder)))


def test_racing_processes_all_get_the_one_key_on_disk(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for round_ in range(5):
        folder = tmp_path / f"round-{round_}"
        out = context.Queue()
        workers = [context.Process(target=_load, args=(str(folder), out)) for _ in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        keys = {out.get(timeout=5) for _ in workers}
        assert len(keys) == 1
        assert key_path(folder).read_text(encoding="utf-8").strip() in keys
        assert key_path(folder).stat().st_mode & 0o777 == 0o600
        assert sorted(os.listdir(folder)) == ["api-key"], "no temporary file is left behind"


def test_an_empty_key_file_left_by_a_crash_is_replaced(tmp_path: Path) -> None:
    key_path(tmp_path).write_text("", encoding="utf-8")
    key = load_or_create_key(tmp_path)
    assert key.startswith("sk-sqltune-")
    assert key_path(tmp_path).read_text(encoding="utf-8").strip() == key
    assert load_or_create_key(tmp_path) == key
