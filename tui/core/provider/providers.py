"""Resolve which provider to talk to, find its key, and build the openai SDK client for it."""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tui.core.provider.config import (
    Config,
    ConfigError,
    KeyringRef,
    ProviderKind,
    ProviderProfile,
    load_config,
    mask_key,
)

if TYPE_CHECKING:  # the SDK costs ~0.5 s to import: not before the app's first frame
    import openai

__all__ = [
    "OPENAI_FINE_TUNING_END",
    "SDK_RETRIES",
    "Capabilities",
    "ConfigError",
    "LocalEndpoint",
    "ProviderError",
    "ProviderProfile",
    "ResolvedProvider",
    "SecretFilter",
    "capabilities_for",
    "default_capabilities",
    "fine_tuning_note",
    "install_secret_redaction",
    "make_async_client",
    "mask_key",
    "redact",
    "register_secret",
    "resolve_provider",
    "store_key_in_keyring",
]

log = logging.getLogger(__name__)

OPENAI_FINE_TUNING_END = dt.date(2027, 1, 6)
"""OpenAI stops accepting new fine-tuning jobs on this date."""

OPENAI_BASE_URL = "https://api.openai.com/v1"

SDK_RETRIES = 2
"""How often the openai SDK retries a one-shot call (408, 409, 429, 5xx, dropped connections),
with its own backoff and the provider's retry-after: the one retry policy for one-shot calls.
Nothing retries on top of it; only the job follower keeps a loop of its own (max_retries=0)."""


class ProviderError(Exception):
    """No usable provider, a missing key, an unknown profile (messages never hold a key)."""


class LocalEndpoint(Protocol):
    """What the local server starter returns (tui.launch.local_endpoint()'s endpoint)."""

    @property
    def base_url(self) -> str: ...
    @property
    def api_key(self) -> str: ...
    def stop(self) -> None: ...


@dataclass(frozen=True)
class Capabilities:
    """What a provider supports beyond the basic files and jobs calls."""

    pause_resume: bool
    """Jobs can be paused and resumed."""
    checkpoints: bool
    """Job checkpoints can be listed."""
    uploads: bool
    """The multipart Uploads API exists (large files)."""


_DEFAULT_CAPABILITIES: dict[str, Capabilities] = {
    "openai": Capabilities(pause_resume=True, checkpoints=True, uploads=True),
    "azure": Capabilities(pause_resume=False, checkpoints=True, uploads=False),
    "compatible": Capabilities(pause_resume=False, checkpoints=False, uploads=False),
    "local": Capabilities(pause_resume=True, checkpoints=True, uploads=True),
}


def default_capabilities(kind: ProviderKind) -> Capabilities:
    """What a provider of this kind supports unless its profile says otherwise."""
    return _DEFAULT_CAPABILITIES[kind]


def capabilities_for(profile: ProviderProfile) -> Capabilities:
    """The kind's defaults, overridden by the profile's [capabilities] table."""
    base = _DEFAULT_CAPABILITIES[profile.kind]
    values = {name: profile.capabilities.get(name, getattr(base, name))
              for name in ("pause_resume", "checkpoints", "uploads")}
    return Capabilities(**values)


def fine_tuning_note(kind: ProviderKind, today: dt.date | None = None) -> str | None:
    """A note for the create-job form: OpenAI's end of new fine-tuning jobs (other kinds: None)."""
    if kind != "openai":
        return None
    today = today or dt.date.today()
    end = OPENAI_FINE_TUNING_END.isoformat()
    if today >= OPENAI_FINE_TUNING_END:
        return (f"OpenAI stopped accepting new fine-tuning jobs on {end}; this request will "
                "probably be refused. Use an azure, compatible or local provider instead.")
    if (OPENAI_FINE_TUNING_END - today).days <= 90:
        return f"Note: OpenAI stops accepting new fine-tuning jobs on {end}."
    return None


# --- secrets: masking and log redaction -------------------------------------------------------

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(secret: str | None) -> None:
    """Remember a key so that redact() and the log filter mask it wherever it appears."""
    if secret and len(secret) >= 6:
        with _secrets_lock:
            _secrets.add(secret)


def redact(text: str) -> str:
    """Replace every registered key in text with its masked form."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, mask_key(secret))
    return text


class SecretFilter(logging.Filter):
    """A logging filter that masks registered keys in the message, its arguments and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _redact_record(record: logging.LogRecord) -> None:
    if not _secrets:
        return
    try:
        message = record.getMessage()
    except Exception:  # a broken format string is logging's problem, not ours
        return
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)


_installed = False


def install_secret_redaction() -> None:
    """Mask registered keys in every log record of the process (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


# --- resolution ---------------------------------------------------------------------------------

Source = Literal["flag", "config", "env", "local"]


@dataclass
class ResolvedProvider:
    """A profile plus its key and base URL, ready for make_async_client()."""

    profile: ProviderProfile
    """The profile (for env and local resolution, a synthesised one)."""
    base_url: str | None
    """Base URL the client uses; None for azure profiles that use endpoint instead."""
    api_key: str = field(repr=False)
    """The key itself: never print it; mask_key() it for display."""
    source: Source
    """Which resolution step chose this provider."""
    local: LocalEndpoint | None = field(default=None, repr=False)
    """The local server endpoint this resolution attached to; close() lets go of it."""

    @property
    def name(self) -> str:
        """Profile name."""
        return self.profile.name

    @property
    def kind(self) -> ProviderKind:
        """Profile kind."""
        return self.profile.kind

    @property
    def capabilities(self) -> Capabilities:
        """What this provider supports."""
        return capabilities_for(self.profile)

    @property
    def masked_key(self) -> str:
        """The key as the UI may show it."""
        return mask_key(self.api_key)

    def deployment_for(self, model: str) -> str:
        """Azure: the deployment name for a model (the model itself elsewhere or when unmapped)."""
        return self.profile.deployments.get(model, model)

    def describe(self) -> str:
        """One line for status bars: name, kind, URL, masked key."""
        where = self.base_url or self.profile.endpoint or ""
        return f"{self.name} ({self.kind}) {where} key {self.masked_key}"

    def close(self) -> None:
        """Let go of the local server endpoint (``stop()``: its keep-alive, not the server)."""
        if self.local is not None:
            local, self.local = self.local, None
            local.stop()

    def __repr__(self) -> str:
        return (f"ResolvedProvider(name={self.name!r}, kind={self.kind!r}, "
                f"base_url={self.base_url!r}, api_key={self.masked_key!r}, source={self.source!r})")

    __str__ = __repr__


def read_keyring(ref: KeyringRef) -> str | None:
    """The key stored in the OS keyring, None when absent; ProviderError when no keyring works."""
    try:
        import keyring
        import keyring.errors
    except ImportError:  # pragma: no cover - keyring is a dependency
        raise ProviderError("the keyring package is not installed") from None
    try:
        return keyring.get_password(ref.service, ref.user)
    except keyring.errors.KeyringError as error:
        raise ProviderError(
            f"the OS keyring is unavailable ({type(error).__name__}); on a headless machine "
            "set api_key_env in the profile instead") from None


def store_key_in_keyring(ref: KeyringRef, key: str) -> None:
    """Save a key in the OS keyring; ProviderError when no keyring works here."""
    try:
        import keyring
        import keyring.errors
    except ImportError:  # pragma: no cover
        raise ProviderError("the keyring package is not installed") from None
    try:
        keyring.set_password(ref.service, ref.user, key)
    except keyring.errors.KeyringError as error:
        raise ProviderError(f"the OS keyring is unavailable ({type(error).__name__})") from None
    register_secret(key)


def _key_for(profile: ProviderProfile, env: Mapping[str, str]) -> str:
    if profile.api_key_env:
        value = env.get(profile.api_key_env)
        if value:
            return value
        if not profile.keyring and not profile.api_key:
            raise ProviderError(f"profile {profile.name!r}: environment variable "
                                f"{profile.api_key_env} is not set")
    if profile.keyring:
        value = read_keyring(profile.keyring)
        if value:
            return value
        if not profile.api_key:
            ref = profile.keyring
            raise ProviderError(f"profile {profile.name!r}: no key in the OS keyring under "
                                f"service {ref.service!r}, user {ref.user!r}")
    if profile.api_key:
        return profile.api_key
    fallback = {"openai": "OPENAI_API_KEY", "azure": "AZURE_OPENAI_API_KEY",
                "local": "SQLTUNE_SERVER_KEY"}.get(profile.kind)
    if fallback and env.get(fallback):
        return env[fallback]
    if profile.kind in ("compatible", "local"):
        return "none"  # many self-hosted servers want no key, but the SDK insists on one
    raise ProviderError(f"profile {profile.name!r} has no API key source: set api_key_env "
                        "or keyring in config.toml")


def _from_profile(profile: ProviderProfile, source: Source, env: Mapping[str, str],
                  start_local: Callable[[], LocalEndpoint] | None) -> ResolvedProvider:
    if profile.kind == "local" and not profile.base_url:
        return _start_local(start_local, source, name=profile.name, profile=profile)
    key = _key_for(profile, env)
    register_secret(key)
    base_url = profile.base_url
    if profile.kind == "openai" and not base_url:
        base_url = OPENAI_BASE_URL
    if profile.kind == "compatible" and not base_url:
        raise ProviderError(f"profile {profile.name!r}: a compatible profile needs base_url")
    if profile.kind == "azure" and not profile.api_version:
        raise ProviderError(f"profile {profile.name!r}: an azure profile needs api_version")
    return ResolvedProvider(profile=profile, base_url=base_url, api_key=key, source=source)


def _start_local(start_local: Callable[[], LocalEndpoint] | None, source: Source, *,
                 name: str = "local", profile: ProviderProfile | None = None) -> ResolvedProvider:
    if start_local is None:
        raise ProviderError("no provider is configured and no local server starter was given")
    endpoint = start_local()
    register_secret(endpoint.api_key)
    profile = profile or ProviderProfile(name=name, kind="local")
    return ResolvedProvider(profile=profile, base_url=endpoint.base_url,
                            api_key=endpoint.api_key, source=source, local=endpoint)


def resolve_provider(name: str | None = None, *,
                     start_local: Callable[[], LocalEndpoint] | None = None,
                     config: Config | None = None,
                     env: Mapping[str, str] | None = None) -> ResolvedProvider:
    """--provider NAME, else config's default profile, else OPENAI_API_KEY, else the local server.

    ``start_local`` is called only when the local server is chosen; the caller owns the result
    and should call ``close()`` on exit. ``name="local"`` picks the local server even when
    config.toml has no profile of that name.
    """
    env = os.environ if env is None else env
    config = load_config() if config is None else config
    if name:
        profile = config.profiles.get(name)
        if profile is not None:
            return _from_profile(profile, "flag", env, start_local)
        if name == "local":
            return _start_local(start_local, "flag")
        known = ", ".join(sorted(config.profiles)) or "none"
        raise ProviderError(f"unknown provider profile {name!r} (configured: {known})")
    if config.default:
        profile = config.profiles.get(config.default)
        if profile is None:
            raise ProviderError(f"config.toml's default profile {config.default!r} does not exist")
        return _from_profile(profile, "config", env, start_local)
    key = env.get("OPENAI_API_KEY")
    if key:
        register_secret(key)
        base_url = env.get("OPENAI_BASE_URL") or OPENAI_BASE_URL
        kind: ProviderKind = "openai" if base_url.rstrip("/") == OPENAI_BASE_URL else "compatible"
        profile = ProviderProfile(name="env", kind=kind, base_url=base_url,
                                  api_key_env="OPENAI_API_KEY")
        return ResolvedProvider(profile=profile, base_url=base_url, api_key=key, source="env")
    return _start_local(start_local, "local")


def make_async_client(resolved: ResolvedProvider, *, max_retries: int = SDK_RETRIES,
                      timeout: float | None = 60.0) -> openai.AsyncOpenAI:
    """An AsyncOpenAI (or AsyncAzureOpenAI for azure profiles) for the resolved provider; the
    SDK retries each call ``max_retries`` times (see SDK_RETRIES)."""
    import openai  # lazily: the SDK is slow to import
    profile = resolved.profile
    if profile.kind == "azure":
        if profile.endpoint:
            return openai.AsyncAzureOpenAI(
                azure_endpoint=profile.endpoint, api_version=profile.api_version,
                api_key=resolved.api_key, max_retries=max_retries, timeout=timeout)
        return openai.AsyncAzureOpenAI(
            base_url=resolved.base_url or "", api_version=profile.api_version,
            api_key=resolved.api_key, max_retries=max_retries, timeout=timeout)
    return openai.AsyncOpenAI(api_key=resolved.api_key, base_url=resolved.base_url,
                              max_retries=max_retries, timeout=timeout)
