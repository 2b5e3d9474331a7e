"""Provider profiles in config.toml: read with tomllib, saved with tomlkit (comments stay)."""

from __future__ import annotations

import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from tui.core.paths import config_dir

log = logging.getLogger(__name__)

ProviderKind = Literal["openai", "azure", "compatible", "local"]
KINDS: tuple[ProviderKind, ...] = ("openai", "azure", "compatible", "local")
CAPABILITY_NAMES = ("pause_resume", "checkpoints", "uploads")


class ConfigError(Exception):
    """config.toml is unreadable or describes an impossible profile (never carries a key)."""


def mask_key(key: str | None) -> str:
    """``sk-proj-abc…wxyz`` style: the key's kind prefix and last four characters, never more."""
    if not key:
        return "(none)"
    if len(key) < 12:
        return "…"
    prefix = key.split("-", 1)[0] + "-" if "-" in key[:8] else ""
    return f"{prefix}…{key[-4:]}"


@dataclass(frozen=True)
class KeyringRef:
    """Where a key lives in the OS keyring."""

    service: str
    """Keyring service name, e.g. ``sqltune``."""
    user: str
    """Keyring user (account) name, usually the profile name."""


@dataclass(frozen=True)
class ProviderProfile:
    """One named provider: kind, endpoint and where its API key comes from."""

    name: str
    """Profile name, as given to ``--provider``."""
    kind: ProviderKind
    """openai, azure, compatible or local."""
    base_url: str | None = None
    """API base URL (ends in /v1 for OpenAI-style servers); None means the kind's default."""
    api_key_env: str | None = None
    """Name of the environment variable that holds the key."""
    keyring: KeyringRef | None = None
    """OS keyring entry that holds the key."""
    api_key: str | None = field(default=None, repr=False)
    """A plain key in the config file, only when the user insists (file written 0600)."""
    api_version: str | None = None
    """Azure API version, e.g. ``2025-04-01-preview``."""
    endpoint: str | None = None
    """Azure resource endpoint, e.g. ``https://example.openai.azure.com``."""
    deployments: dict[str, str] = field(default_factory=dict)
    """Azure: model name -> deployment name."""
    capabilities: dict[str, bool] = field(default_factory=dict)
    """Overrides of the kind's default capabilities (pause_resume, checkpoints, uploads)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"profile {self.name!r}: kind must be one of {', '.join(KINDS)}")
        if self.kind == "azure" and not (self.endpoint or self.base_url):
            raise ConfigError(f"profile {self.name!r}: an azure profile needs endpoint or base_url")
        unknown = set(self.capabilities) - set(CAPABILITY_NAMES)
        if unknown:
            raise ConfigError(f"profile {self.name!r}: unknown capabilities {sorted(unknown)}")

    def __repr__(self) -> str:
        key = f", api_key={mask_key(self.api_key)!r}" if self.api_key else ""
        return (f"ProviderProfile(name={self.name!r}, kind={self.kind!r}, "
                f"base_url={self.base_url!r}, api_key_env={self.api_key_env!r}, "
                f"keyring={self.keyring!r}{key})")

    __str__ = __repr__

    def to_dict(self) -> dict[str, Any]:
        """The profile's table in config.toml (without its name)."""
        out: dict[str, Any] = {"kind": self.kind}
        for name in ("base_url", "api_key_env", "api_version", "endpoint", "api_key"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.keyring is not None:
            out["keyring"] = {"service": self.keyring.service, "user": self.keyring.user}
        if self.deployments:
            out["deployments"] = dict(self.deployments)
        if self.capabilities:
            out["capabilities"] = dict(self.capabilities)
        return out

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> ProviderProfile:
        """Build a profile from its config.toml table."""
        kind = data.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"profile {name!r}: kind must be one of {', '.join(KINDS)}")
        ring = data.get("keyring")
        keyring_ref: KeyringRef | None = None
        if isinstance(ring, dict):
            keyring_ref = KeyringRef(str(ring.get("service", "sqltune")),
                                     str(ring.get("user", name)))
        elif ring is not None:
            raise ConfigError(f"profile {name!r}: keyring must be a table with service and user")

        def text(key: str) -> str | None:
            value = data.get(key)
            if value is None:
                return None
            if not isinstance(value, str):
                raise ConfigError(f"profile {name!r}: {key} must be a string")
            return value

        deployments = data.get("deployments", {})
        capabilities = data.get("capabilities", {})
        if not isinstance(deployments, dict) or not isinstance(capabilities, dict):
            raise ConfigError(f"profile {name!r}: deployments and capabilities must be tables")
        return cls(
            name=name, kind=cast(ProviderKind, kind), base_url=text("base_url"),
            api_key_env=text("api_key_env"), keyring=keyring_ref, api_key=text("api_key"),
            api_version=text("api_version"), endpoint=text("endpoint"),
            deployments={str(k): str(v) for k, v in deployments.items()},
            capabilities={str(k): bool(v) for k, v in capabilities.items()},
        )


@dataclass
class Config:
    """The whole config file: profiles and the default profile's name."""

    profiles: dict[str, ProviderProfile] = field(default_factory=dict)
    """Profiles by name."""
    default: str | None = None
    """Name of the profile used when --provider is not given."""
    base_models: dict[str, str] = field(default_factory=dict)
    """``[local_server.base_models]``: NAME = SOURCE (Hub repo id, model folder or .gguf file),
    the real base models of a local server started without ``--base-model``."""

    def holds_plain_key(self) -> bool:
        """True when any profile stores a key in the file itself."""
        return any(profile.api_key for profile in self.profiles.values())


def config_path() -> Path:
    """``config_dir()/config.toml``."""
    return config_dir() / "config.toml"


def load_config(path: Path | None = None) -> Config:
    """Read config.toml; a missing file is an empty config."""
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        # The decode error can quote the offending line, which may hold a key: keep position only.
        where = re.search(r"\(at line \d+, column \d+\)", str(error))
        raise ConfigError(f"{path} is not valid TOML {where.group(0) if where else ''}".rstrip()
                          ) from None
    profiles_raw = data.get("profiles", {})
    if not isinstance(profiles_raw, dict):
        raise ConfigError(f"{path}: [profiles] must be a table")
    profiles = {name: ProviderProfile.from_dict(name, table)
                for name, table in profiles_raw.items() if isinstance(table, dict)}
    default = data.get("default")
    if default is not None and not isinstance(default, str):
        raise ConfigError(f"{path}: default must be a profile name")
    config = Config(profiles=profiles, default=default,
                    base_models=_base_models(data.get("local_server", {}), path))
    if config.holds_plain_key() and os.name == "posix" and path.stat().st_mode & 0o077:
        log.warning("%s holds an API key but is readable by others; run chmod 600 on it", path)
    return config


def _base_models(section: Any, path: Path) -> dict[str, str]:
    """The ``[local_server.base_models]`` table (names are checked by the server)."""
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [local_server] must be a table")
    table = section.get("base_models", {})
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ConfigError(f"{path}: [local_server.base_models] must map names to sources "
                          '(NAME = "owner/repo", a model folder or a .gguf file)')
    return {str(name): value for name, value in table.items()}


def save_config(config: Config, path: Path | None = None) -> list[str]:
    """Write config.toml (0600 when it holds a key); returns warnings for the user.

    The file is updated in place: comments, layout and tables sqltune does not know survive;
    profiles and base models not in ``config`` go. An unreadable or invalid file is replaced.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    path = path or config_path()
    warnings: list[str] = []
    try:
        document = tomlkit.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, TOMLKitError):
        document = tomlkit.document()
    if config.default is not None:
        _set(document, "default", config.default)
    elif "default" in document:
        del document["default"]
    profiles = {name: profile.to_dict() for name, profile in config.profiles.items()}
    _update(_table(document, "profiles"), profiles, depth=1)
    if config.base_models:
        _update(_table(_table(document, "local_server"), "base_models"),
                dict(config.base_models), depth=0)
    elif "local_server" in document and "base_models" in document["local_server"]:
        del document["local_server"]["base_models"]
    text = tomlkit.dumps(document).rstrip("\n") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = config.holds_plain_key()
    mode = 0o600 if secret else 0o644
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if secret:
        names = ", ".join(sorted(n for n, p in config.profiles.items() if p.api_key))
        warnings.append(f"{path} stores a plain API key for {names}; it is written with mode 0600. "
                        "An environment variable (api_key_env) or the OS keyring is safer.")
    return warnings


def _table(container: Any, key: str) -> Any:
    """``container[key]`` as a table (``[key.sub]`` headers), created when missing."""
    import tomlkit

    found = container.get(key)
    if not isinstance(found, dict):
        found = tomlkit.table(is_super_table=True)
        container[key] = found
    return found


def _set(container: Any, key: str, value: Any) -> None:
    """Assign unless equal, so an unchanged item keeps its comment and spelling."""
    current = container.get(key)
    unwrapped = current.unwrap() if hasattr(current, "unwrap") else current
    if key not in container or unwrapped != value:
        container[key] = value


def _update(container: Any, values: dict[str, Any], depth: int) -> None:
    """Make ``container`` hold exactly ``values``; tables ``depth`` levels down get [headers],
    deeper ones are inline (``keyring = { service = ..., user = ... }``)."""
    import tomlkit
    from tomlkit.items import InlineTable

    if isinstance(container, InlineTable):
        depth = 0  # the user wrote this level inline: everything below it stays inline
    for key in [key for key in container if key not in values]:
        del container[key]
    for key, value in values.items():
        if not isinstance(value, dict):
            _set(container, key, value)
        elif isinstance(container.get(key), dict):
            _update(container[key], value, depth - 1)
        else:
            table = tomlkit.table() if depth > 0 else tomlkit.inline_table()
            _update(table, value, depth - 1)
            if depth > 0:
                table.add(tomlkit.nl())  # a blank line before whatever table follows
            container[key] = table
