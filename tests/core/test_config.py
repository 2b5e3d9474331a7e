"""config.toml round trip, file modes, escaping, and the user's comments kept on save."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from tui.core.provider.config import (
    Config,
    ConfigError,
    KeyringRef,
    ProviderProfile,
    config_path,
    load_config,
    mask_key,
    save_config,
)

KEY = "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789wxyz"


def _sample() -> Config:
    return Config(default="work", profiles={
        "work": ProviderProfile(name="work", kind="openai", api_key_env="WORK_KEY"),
        "az": ProviderProfile(name="az", kind="azure", endpoint="https://ex.openai.azure.com",
                              api_version="2025-04-01-preview",
                              keyring=KeyringRef("sqltune", "az"),
                              deployments={"gpt-4.1-mini": "mini \"prod\"", "x.y": "z"}),
        "vllm box": ProviderProfile(name="vllm box", kind="compatible",
                                    base_url="http://10.0.0.2:8000/v1",
                                    capabilities={"pause_resume": False, "checkpoints": True}),
        "local": ProviderProfile(name="local", kind="local"),
    })


def test_round_trip_through_config_toml() -> None:
    config = _sample()
    warnings = save_config(config)
    assert warnings == []
    path = config_path()
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    loaded = load_config()
    assert loaded.default == "work"
    assert loaded.profiles == config.profiles


def test_plain_key_is_written_0600_with_a_warning() -> None:
    config = _sample()
    config.profiles["plain"] = ProviderProfile(name="plain", kind="openai", api_key=KEY)
    warnings = save_config(config)
    assert stat.S_IMODE(config_path().stat().st_mode) == 0o600
    assert len(warnings) == 1 and "0600" in warnings[0] and "plain" in warnings[0]
    assert KEY not in warnings[0]
    assert load_config().profiles["plain"].api_key == KEY


def test_removing_the_key_relaxes_the_mode() -> None:
    config = _sample()
    config.profiles["plain"] = ProviderProfile(name="plain", kind="openai", api_key=KEY)
    save_config(config)
    del config.profiles["plain"]
    save_config(config)
    assert stat.S_IMODE(config_path().stat().st_mode) == 0o644


def test_repr_of_a_profile_never_shows_the_key() -> None:
    profile = ProviderProfile(name="plain", kind="openai", api_key=KEY)
    for text in (repr(profile), str(profile), f"{profile}", repr([profile])):
        assert KEY not in text
        assert "…wxyz" in text


@pytest.mark.parametrize(("key", "masked"), [
    (KEY, "sk-…wxyz"),
    ("abcdefghijklmnop1234", "…1234"),
    ("short", "…"),
    (None, "(none)"),
])
def test_mask_key(key: str | None, masked: str) -> None:
    assert mask_key(key) == masked


def test_writer_escapes_strings_and_keys() -> None:
    weird = 'quote " backslash \\ newline \n tab \t bell \x07'
    config = Config(default="x y.z", base_models={"a.b": weird}, profiles={
        "x y.z": ProviderProfile(name="x y.z", kind="compatible", base_url=weird,
                                 deployments={"weird key.with dot": weird, "n": "3"},
                                 capabilities={"uploads": False, "checkpoints": True})})
    save_config(config)
    assert tomllib.loads(config_path().read_text(encoding="utf-8"))["profiles"]["x y.z"][
        "deployments"]["weird key.with dot"] == weird
    assert load_config() == config


def test_saving_keeps_what_the_user_wrote() -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('# my providers\ndefault = "work"  # the usual one\n\n'
                    '[profiles.work]              # the team account\nkind = "openai"\n'
                    'api_key_env = "WORK_KEY"     # set in ~/.profile\n\n'
                    '[profiles.old]\nkind = "local"\n\n[tools.mine]\nanswer = 42\n',
                    encoding="utf-8")
    config = load_config()
    del config.profiles["old"]
    config.profiles["lab"] = ProviderProfile(name="lab", kind="local",
                                             base_url="http://127.0.0.1:8765/v1")
    config.base_models["tiny"] = "/models/tiny"
    save_config(config)
    text = path.read_text(encoding="utf-8")
    for kept in ("# my providers", '"work"  # the usual one', "# the team account",
                 "# set in ~/.profile", "[tools.mine]\nanswer = 42"):
        assert kept in text
    assert "[profiles.old]" not in text
    assert load_config() == config
    assert tomllib.loads(text)["tools"] == {"mine": {"answer": 42}}


def test_missing_file_is_an_empty_config() -> None:
    assert load_config() == Config()


def test_invalid_toml_error_does_not_quote_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[profiles.x]\napi_key = "{KEY}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert KEY not in str(info.value)


def test_bad_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[profiles.x]\nkind = "bedrock"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="kind must be one of"):
        load_config(path)
