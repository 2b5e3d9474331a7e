"""Provider resolution order, key sources, masking, redaction and client construction."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import openai
import pytest

from tui.core.provider.config import Config, KeyringRef, ProviderProfile, save_config
from tui.core.provider.providers import (
    ProviderError,
    SecretFilter,
    capabilities_for,
    fine_tuning_note,
    install_secret_redaction,
    make_async_client,
    redact,
    register_secret,
    resolve_provider,
)

KEY = "sk-test-0123456789abcdefghijklmnopqrstuvwxyzKEY9"
LOCAL_KEY = "sqlt-local-0123456789abcdef0123456789"


@dataclass
class Endpoint:
    """What a local server starter hands back (the real one is tested in test_files/jobs)."""

    base_url: str = "http://127.0.0.1:9/v1"
    api_key: str = LOCAL_KEY
    stopped: bool = False

    def stop(self) -> None:
        self.stopped = True


class Starter:
    def __init__(self) -> None:
        self.started: list[Endpoint] = []

    def __call__(self) -> Endpoint:
        endpoint = Endpoint()
        self.started.append(endpoint)
        return endpoint


def _config() -> Config:
    return Config(default="work", profiles={
        "work": ProviderProfile(name="work", kind="openai", api_key_env="WORK_KEY"),
        "other": ProviderProfile(name="other", kind="compatible", base_url="http://h:1/v1",
                                 api_key_env="OTHER_KEY"),
        "az": ProviderProfile(name="az", kind="azure", endpoint="https://ex.openai.azure.com",
                              api_version="2025-04-01-preview", api_key_env="AZ_KEY",
                              deployments={"gpt-4.1-mini": "mini-prod"}),
    })


def test_flag_beats_config_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORK_KEY", KEY)
    monkeypatch.setenv("OTHER_KEY", "other-key-1234567890")
    monkeypatch.setenv("OPENAI_API_KEY", "env-key-1234567890")
    save_config(_config())
    starter = Starter()
    chosen = resolve_provider("other", start_local=starter)
    assert (chosen.name, chosen.source, chosen.base_url) == ("other", "flag", "http://h:1/v1")
    default = resolve_provider(None, start_local=starter)
    assert (default.name, default.source, default.api_key) == ("work", "config", KEY)
    assert default.base_url == "https://api.openai.com/v1"
    assert starter.started == []


def test_environment_beats_local_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gateway:8080/v1")
    starter = Starter()
    chosen = resolve_provider(None, start_local=starter)
    assert (chosen.source, chosen.kind, chosen.base_url) == ("env", "compatible",
                                                             "http://gateway:8080/v1")
    assert starter.started == []


def test_nothing_configured_starts_the_local_server() -> None:
    starter = Starter()
    chosen = resolve_provider(None, start_local=starter)
    assert (chosen.source, chosen.kind, chosen.api_key) == ("local", "local", LOCAL_KEY)
    assert chosen.capabilities.pause_resume and chosen.capabilities.uploads
    chosen.close()
    chosen.close()
    assert starter.started[0].stopped


def test_provider_local_flag_works_without_a_profile() -> None:
    starter = Starter()
    chosen = resolve_provider("local", start_local=starter)
    assert chosen.source == "flag" and chosen.local is starter.started[0]


def test_unknown_profile_names_the_known_ones() -> None:
    save_config(_config())
    with pytest.raises(ProviderError, match=r"unknown provider profile 'nope'.*az, other, work"):
        resolve_provider("nope", start_local=Starter())


def test_missing_env_var_is_a_clear_error() -> None:
    save_config(_config())
    with pytest.raises(ProviderError, match="WORK_KEY is not set"):
        resolve_provider(None, start_local=Starter())


def test_unavailable_keyring_is_graceful() -> None:
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # what a headless machine without a backend has
    try:
        config = Config(profiles={"k": ProviderProfile(name="k", kind="openai",
                                                       keyring=KeyringRef("sqltune", "k"))})
        with pytest.raises(ProviderError, match="keyring is unavailable"):
            resolve_provider("k", config=config, start_local=Starter())
    finally:
        keyring.set_keyring(previous)


def test_repr_and_describe_mask_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    chosen = resolve_provider(None, start_local=Starter())
    for text in (repr(chosen), str(chosen), chosen.describe(), chosen.masked_key):
        assert KEY not in text
    assert chosen.masked_key == "sk-…KEY9"


def test_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    register_secret(KEY)
    install_secret_redaction()
    logger = logging.getLogger("tests.providers")
    with caplog.at_level(logging.DEBUG):
        logger.warning("header Authorization: Bearer %s", KEY)
        logger.info(f"inline {KEY} too")
        try:
            raise RuntimeError(f"boom {KEY}")
        except RuntimeError:
            logger.exception("failed")
    assert len(caplog.records) == 3
    assert KEY not in caplog.text
    assert "sk-…KEY9" in caplog.text


def test_secret_filter_on_a_handler() -> None:
    register_secret(KEY)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key=%s", (KEY,), None)
    assert SecretFilter().filter(record)
    assert KEY not in record.getMessage()
    assert redact(f"a {KEY} b") == "a sk-…KEY9 b"


def test_clients_by_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZ_KEY", KEY)
    monkeypatch.setenv("OTHER_KEY", "other-key-1234567890")
    config = _config()
    azure = resolve_provider("az", config=config, start_local=Starter())
    client = make_async_client(azure)
    assert isinstance(client, openai.AsyncAzureOpenAI)
    assert azure.deployment_for("gpt-4.1-mini") == "mini-prod"
    assert azure.deployment_for("gpt-4o") == "gpt-4o"
    other = make_async_client(resolve_provider("other", config=config, start_local=Starter()))
    assert type(other) is openai.AsyncOpenAI
    assert str(other.base_url).startswith("http://h:1/v1")


def test_capabilities_and_overrides() -> None:
    plain = ProviderProfile(name="c", kind="compatible", base_url="http://h/v1")
    assert not capabilities_for(plain).pause_resume
    tuned = ProviderProfile(name="c", kind="compatible", base_url="http://h/v1",
                            capabilities={"pause_resume": True})
    assert capabilities_for(tuned).pause_resume
    assert capabilities_for(ProviderProfile(name="o", kind="openai")).uploads


def test_openai_fine_tuning_end_note() -> None:
    assert fine_tuning_note("openai", dt.date(2026, 6, 1)) is None
    assert "2027-01-06" in (fine_tuning_note("openai", dt.date(2026, 11, 25)) or "")
    after = fine_tuning_note("openai", dt.date(2027, 1, 6)) or ""
    assert "stopped accepting" in after
    assert fine_tuning_note("azure", dt.date(2027, 3, 1)) is None
    assert fine_tuning_note("local", dt.date(2027, 3, 1)) is None
