"""The loopback check a client makes before attaching: status, wrong key, nobody there."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tui.server.inprocess import start_local_server
from tui.server.service import KeyRejected, probe


def test_probe_answers_names_a_wrong_key_and_sees_nobody(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # never used: the check is direct
    with start_local_server(tmp_path / "server", speed="max") as server:
        info = probe(server.base_url, server.api_key)
        assert info is not None and info["pid"] == os.getpid()
        with pytest.raises(KeyRejected, match="rejects this key") as rejected:
            probe(server.base_url, "sk-wrong-key-0000")
        assert "sk-wrong" not in str(rejected.value)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    assert probe(f"http://127.0.0.1:{port}/v1", "sk-any", timeout=1.0) is None
