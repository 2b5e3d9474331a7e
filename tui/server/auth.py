"""The local server's bearer key: generated once per data dir (mode 0600) or taken from the env."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from aiohttp import web

from tui.server.errors import ApiError

KEY_FILE = "api-key"
KEY_ENV = "SQLTUNE_SERVER_KEY"


def key_path(data_dir: Path) -> Path:
    """Where the server keeps its generated key."""
    return data_dir / KEY_FILE


def load_or_create_key(data_dir: Path) -> str:
    """``SQLTUNE_SERVER_KEY`` when set, else the key in ``<data dir>/api-key`` (made if missing)."""
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        return from_env
    path = key_path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
        path.unlink()
        return load_or_create_key(data_dir)
    key = "sk-sqltune-" + secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key


def check_bearer(request: web.Request, key: str) -> None:
    """Raise a 401 ApiError unless the request carries ``Authorization: Bearer <key>``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "You didn't provide an API key. You need to provide your API key in "
                       "an Authorization header using Bearer auth (i.e. Authorization: Bearer "
                       "YOUR_KEY). The local server's key is in its data dir's api-key file.")
    if not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise ApiError(401, "Incorrect API key provided. The local server's key is in its data "
                       "dir's api-key file (or SQLTUNE_SERVER_KEY).", code="invalid_api_key")
