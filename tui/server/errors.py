"""OpenAI-shaped API errors: one exception type the routes raise and the middleware renders."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the server answers with OpenAI's ``{"error": {...}}`` body and an HTTP status."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        """HTTP status code (400, 401, 403, 404, 429, 500...)."""
        self.message = message
        """Human-readable explanation; never contains a secret."""
        self.type = type
        """OpenAI error type, e.g. ``invalid_request_error`` or ``server_error``."""
        self.param = param
        """The request field at fault, when there is one."""
        self.code = code
        """Machine-readable code, e.g. ``invalid_api_key``."""
        self.headers = headers or {}
        """Extra response headers (``retry-after-ms`` on 429)."""

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI sends for this error."""
        return {"error": {"message": self.message, "type": self.type,
                          "param": self.param, "code": self.code}}


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 ``invalid_request_error`` (also used for state conflicts: the SDK retries 409)."""
    return ApiError(400, message, param=param, code=code)


def not_found(kind: str, object_id: str, *, param: str | None = None) -> ApiError:
    """A 404 worded as OpenAI words them: ``No such File object: file-abc``."""
    return ApiError(404, f"No such {kind} object: {object_id}", param=param)


def server_error(message: str = "The server had an error while processing your request. "
                 "Sorry about that!") -> ApiError:
    """A 500 ``server_error``."""
    return ApiError(500, message, type="server_error")
