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
    for _ in range(3):
        try:
            key = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            key = ""
        if key:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
            return key
        # Written whole under a temporary name, then linked into place: a process that starts
        # at the same moment either wins the link or reads the complete winning key, never an
        # empty or half-written file.
        temp = data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("sk-sqltune-" + secrets.token_urlsafe(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            if path.exists() and not path.read_text(encoding="utf-8").strip():
                path.unlink()  # an empty key file left by an older crash
            os.link(temp, path)
        except FileExistsError:
            pass  # another process linked its key first: read it on the next turn
        finally:
            temp.unlink()
    raise OSError(f"could not create the server key in {path}")


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
