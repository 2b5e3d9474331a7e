"""Shared fixtures: isolated config/data dirs and the optional Spider data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.core.paths import spider_dir


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own config and data folders; nothing touches the user's."""
    base = tmp_path_factory.mktemp("sqltune-home")
    monkeypatch.setenv("SQLTUNE_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("SQLTUNE_DATA_DIR", str(base / "data"))
    # No default real base (Qwen from the Hub): a test that needs one registers it itself.
    monkeypatch.setenv("SQLTUNE_NO_DEFAULT_BASE", "1")
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY",
                 "AZURE_OPENAI_ENDPOINT", "SQLTUNE_SERVER_KEY", "SQLTUNE_LOCAL_URL",
                 "SQLTUNE_LOCAL_KEY", "SQLTUNE_SERVER_SPEED"):
        monkeypatch.delenv(name, raising=False)
    # A background server some test started on this home stops soon, and at the latest here.
    monkeypatch.setenv("SQLTUNE_SERVER_IDLE_TIMEOUT", "20")
    yield
    from tests.service_support import stop_service

    stop_service(base / "data" / "server")


@pytest.fixture(scope="session")
def spider() -> Path:
    """../shared/spider-train, or a clean skip where it is absent (as on a user's machine)."""
    found = spider_dir()
    if found is None:
        pytest.skip("Spider training data (../shared/spider-train) is not present")
    return found


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-init chat model folder (see tests/lora_support.py); skips without torch."""
    pytest.importorskip("torch", reason="the train extra (torch, transformers, peft) is absent")
    pytest.importorskip("transformers")
    from tests.lora_support import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "tiny-chat")
