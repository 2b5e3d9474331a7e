"""The provider's files: list, validated upload (parts for large files) with progress and cancel."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as dt
import hashlib
import io
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Generic, TypeVar, cast

from tui.core.models import DEFAULT_MODEL
from tui.core.provider.providers import Capabilities
from tui.core.provider.retries import describe_error

if TYPE_CHECKING:  # the SDK costs ~0.5 s to import: not before the app's first frame
    import openai
    from openai.types import FilePurpose

    from tui.core.budget.counters import ChatCounter

PART_SIZE = 64 * 1024 * 1024
"""Uploads API part size (the API's maximum per part)."""

T = TypeVar("T")
ProgressCallback = Callable[["UploadProgress"], object]


def sdk_json(obj: Any) -> dict[str, Any]:
    """The provider's JSON object as the SDK parsed it: the fields it sent, unknown ones kept."""
    to_dict = getattr(obj, "to_dict", None)
    return dict(to_dict(mode="json")) if callable(to_dict) else {}


def given(**options: Any) -> dict[str, Any]:
    """The options that were given (not None): a listing call's paging keywords."""
    return {name: value for name, value in options.items() if value is not None}


@dataclass(frozen=True)
class ListPage(Generic[T]):
    """One page of a provider listing: the items, and the page object itself."""

    items: list[T]
    """The page's items, converted, in the provider's order."""
    has_more: bool
    """More items follow (pass the last item's id as ``after``)."""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The page object as the provider sent it (``object``, ``data``, ``has_more``, ...)."""


class FilesError(Exception):
    """A file operation failed; the message is fit for the user and never holds a key."""


class UploadCancelled(FilesError):
    """The user cancelled an upload (any multipart upload was cancelled on the provider)."""


class InvalidFileError(FilesError):
    """The file failed validation and was not uploaded."""

    def __init__(self, path: Path, report: Any) -> None:
        self.report = report
        """The validator's ValidationReport (errors: list of Issue)."""
        self.errors: list[str] = [
            f"line {issue.line}: {issue.message}" + (f" ({issue.field})" if issue.field else "")
            for issue in report.errors
        ]
        """One line per error: ``line 3: ... (messages[1].role)``."""
        shown = "\n".join(f"  {line}" for line in self.errors[:20])
        more = len(self.errors) - 20 + int(getattr(report, "omitted_errors", 0) or 0)
        tail = f"\n  … and {more} more" if more > 0 else ""
        super().__init__(f"{path.name} is not a valid fine-tuning file; not uploaded:\n"
                         f"{shown}{tail}")


def human_size(count: int) -> str:
    """``2.6 MB``, ``812 B``: a byte count as the files pane and ``sqltune files`` show it."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"  # pragma: no cover


@dataclass(frozen=True)
class FileInfo:
    """A file on the provider."""

    id: str
    """Provider file id."""
    filename: str
    """Original name."""
    purpose: str
    """fine-tune, fine-tune-results, batch, ..."""
    bytes: int
    """Size."""
    created_at: int
    """Unix seconds."""
    status: str | None = None
    """uploaded, processed, error (deprecated upstream; may be None)."""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The file object as the provider sent it (what ``--json`` prints)."""

    @classmethod
    def from_sdk(cls, obj: Any) -> FileInfo:
        """From an ``openai.types.FileObject``."""
        return cls(id=obj.id, filename=obj.filename or "", purpose=str(obj.purpose),
                   bytes=int(obj.bytes or 0), created_at=int(obj.created_at or 0),
                   status=getattr(obj, "status", None), raw=sdk_json(obj))

    @property
    def created(self) -> dt.datetime:
        """Creation time (UTC)."""
        return dt.datetime.fromtimestamp(self.created_at, tz=dt.UTC)


@dataclass(frozen=True)
class UploadProgress:
    """Bytes sent so far."""

    sent: int
    """Bytes of the file sent so far."""
    total: int
    """File size."""
    part: int = 1
    """Current part (1-based); 1 of 1 for a single-request upload."""
    parts: int = 1
    """Number of parts."""

    @property
    def fraction(self) -> float:
        """0.0 to 1.0."""
        return 1.0 if self.total == 0 else min(1.0, self.sent / self.total)


class _FileSlice(io.RawIOBase):
    """A read-only window [start, start+length) of a file that reports bytes read."""

    def __init__(self, stream: IO[bytes], start: int, length: int,
                 on_read: Callable[[int], None]) -> None:
        self._stream, self._start, self._length = stream, start, length
        self._pos = 0
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._length}[whence]
        self._pos = max(0, min(self._length, base + offset))
        return self._pos

    def read(self, size: int = -1) -> bytes:
        remaining = self._length - self._pos
        if size < 0 or size > remaining:
            size = remaining
        if size <= 0:
            return b""
        self._stream.seek(self._start + self._pos)
        chunk = self._stream.read(size)
        self._pos += len(chunk)
        self._on_read(self._pos)
        return chunk

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


async def _abandon(work: asyncio.Future[Any]) -> None:
    """Cancel ``work`` and wait until it has ended; a cancellation of the caller itself still
    propagates (only ``work``'s own outcome is ignored)."""
    work.cancel()
    await asyncio.wait({work})  # never raises work's error or its CancelledError, only ours
    if not work.cancelled():
        work.exception()  # retrieved: the request is abandoned, its failure does not matter


async def _cancellable(awaitable: Awaitable[T], cancel: asyncio.Event | None,
                       sent_all: Callable[[], bool] = lambda: False) -> T:
    """Await, abandoning the request as soon as ``cancel`` is set (UploadCancelled).

    Once ``sent_all()`` says the whole body is on the wire, the request is let finish instead
    (the caller then deletes what it created), so a cancel never leaves an unknown file behind.
    A cancellation of the awaiting task cancels the request too and propagates as itself.
    """
    if cancel is None:
        return await awaitable
    work = asyncio.ensure_future(awaitable)
    if cancel.is_set():
        await _abandon(work)
        raise UploadCancelled("upload cancelled")
    waiter = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        work.cancel()  # the caller is cancelled: no request goes on behind its back
        raise
    finally:
        waiter.cancel()
    if not work.done() and not sent_all():
        await _abandon(work)
        raise UploadCancelled("upload cancelled")
    return await work


class FileService:
    """Files on one provider through the openai SDK; returns FileInfo, raises FilesError."""

    def __init__(self, client: openai.AsyncOpenAI, *, capabilities: Capabilities | None = None,
                 part_size: int = PART_SIZE, multipart_threshold: int | None = None) -> None:
        self._client = client
        self._uploads_api = capabilities.uploads if capabilities is not None else True
        self.part_size = part_size
        """Bytes per Uploads API part."""
        self.multipart_threshold = part_size if multipart_threshold is None else multipart_threshold
        """Files larger than this go through the Uploads API (when the provider has it)."""

    async def _call(self, what: str, awaitable: Awaitable[T]) -> T:
        import openai  # lazily: the SDK is slow to import
        try:
            return await awaitable
        except openai.OpenAIError as error:
            raise FilesError(f"{what} failed: {describe_error(error)}") from None

    async def list(self, purpose: str | None = None) -> list[FileInfo]:
        """Every file (all pages), newest first, optionally of one purpose."""
        async def fetch() -> list[FileInfo]:
            kwargs: dict[str, Any] = {"purpose": purpose} if purpose else {}
            found = [FileInfo.from_sdk(item)
                     async for item in self._client.files.list(**kwargs)]
            return sorted(found, key=lambda f: f.created_at, reverse=True)
        return await self._call("listing files", fetch())

    async def page(self, *, limit: int | None = None, after: str | None = None,
                   purpose: str | None = None, order: str | None = None) -> ListPage[FileInfo]:
        """One page of files as the provider lists it (newest first unless ``order="asc"``)."""
        page = await self._call("listing files", self._client.files.list(
            **given(limit=limit, after=after, purpose=purpose, order=order)))
        return ListPage([FileInfo.from_sdk(item) for item in page.data],
                        bool(page.has_more), sdk_json(page))

    async def retrieve(self, file_id: str) -> FileInfo:
        """One file's metadata."""
        obj = await self._call(f"reading file {file_id}", self._client.files.retrieve(file_id))
        return FileInfo.from_sdk(obj)

    async def delete(self, file_id: str) -> bool:
        """Delete a file; True when the provider confirms."""
        return bool((await self.delete_object(file_id)).get("deleted"))

    async def delete_object(self, file_id: str) -> dict[str, Any]:
        """Delete a file; the provider's deletion object (``{"id", "deleted": true, ...}``)."""
        result = await self._call(f"deleting file {file_id}", self._client.files.delete(file_id))
        return sdk_json(result) or {"id": file_id, "deleted": bool(result.deleted)}

    async def content(self, file_id: str) -> bytes:
        """A file's whole content (results CSVs are small)."""
        response = await self._call(f"downloading file {file_id}",
                                    self._client.files.content(file_id))
        return bytes(response.content)

    async def download(self, file_id: str, sink: IO[bytes]) -> int:
        """Stream a file's content into ``sink`` chunk by chunk; the number of bytes written."""
        async def fetch() -> int:
            written = 0
            async with self._client.files.with_streaming_response.content(file_id) as response:
                async for chunk in response.iter_bytes():
                    sink.write(chunk)
                    written += len(chunk)
            return written
        return await self._call(f"downloading file {file_id}", fetch())

    async def content_head(self, file_id: str, *, lines: int = 20,
                           max_bytes: int = 64 * 1024) -> builtins.list[str]:
        """The first lines of a file, reading at most ``max_bytes`` from the network."""
        async def fetch() -> bytes:
            buffer = bytearray()
            async with self._client.files.with_streaming_response.content(file_id) as response:
                async for chunk in response.iter_bytes():
                    buffer.extend(chunk)
                    if len(buffer) >= max_bytes or buffer.count(b"\n") >= lines:
                        break
            return bytes(buffer[:max_bytes])
        data = await self._call(f"reading file {file_id}", fetch())
        text = data.decode("utf-8", errors="replace")
        return text.splitlines()[:lines]

    @staticmethod
    def validate(path: Path, model: str, counter: ChatCounter | None = None) -> Any:
        """Run the fine-tuning validator; raise InvalidFileError listing its errors.

        ``counter`` (a real base's own tokenizer) replaces the tiktoken count and context."""
        from tui.core.data.jsonl import validate_jsonl

        counting: dict[str, Any] = {} if counter is None else {
            "token_check": counter.count, "context": counter.context_limit}
        report = validate_jsonl(path, model, **counting)
        if not report.ok:
            raise InvalidFileError(path, report)
        return report

    async def upload(self, path: Path, *, purpose: str = "fine-tune",
                     model: str = DEFAULT_MODEL, validate: bool = True,
                     progress: ProgressCallback | None = None,
                     cancel: asyncio.Event | None = None) -> FileInfo:
        """Upload a file streamed from disk; fine-tune JSONL is validated first.

        Files above ``multipart_threshold`` go through the Uploads API in ``part_size`` parts.
        Setting ``cancel`` abandons the transfer (and cancels the provider-side upload).
        """
        path = Path(path)
        if not path.is_file():
            raise FilesError(f"{path} does not exist")
        if validate and purpose == "fine-tune":
            await asyncio.to_thread(self.validate, path, model)
        size = path.stat().st_size
        if self._uploads_api and size > self.multipart_threshold:
            return await self._upload_parts(path, size, purpose, progress, cancel)
        return await self._upload_single(path, size, purpose, progress, cancel)

    async def _upload_single(self, path: Path, size: int, purpose: str,
                             progress: ProgressCallback | None,
                             cancel: asyncio.Event | None) -> FileInfo:
        import openai  # lazily: the SDK is slow to import
        def report(sent: int) -> None:
            if progress is not None:
                progress(UploadProgress(sent, size))

        with path.open("rb") as stream:
            window = _FileSlice(stream, 0, size, report)
            obj = await self._call(
                f"uploading {path.name}",
                _cancellable(self._client.files.create(
                    file=(path.name, cast(IO[bytes], window), "application/jsonl"),
                    purpose=cast("FilePurpose", purpose)), cancel,
                    lambda: window.tell() >= size))
        if cancel is not None and cancel.is_set():
            # The body was already on the wire when cancel came: a cancelled upload leaves no file.
            with contextlib.suppress(openai.OpenAIError):
                await self._client.files.delete(obj.id)
            raise UploadCancelled("upload cancelled")
        report(size)
        return FileInfo.from_sdk(obj)

    async def _upload_parts(self, path: Path, size: int, purpose: str,
                            progress: ProgressCallback | None,
                            cancel: asyncio.Event | None) -> FileInfo:
        import openai  # lazily: the SDK is slow to import
        parts = max(1, -(-size // self.part_size))
        upload = await self._call(
            f"starting the upload of {path.name}",
            _cancellable(self._client.uploads.create(
                bytes=size, filename=path.name, mime_type="application/jsonl",
                purpose=cast("FilePurpose", purpose)), cancel))
        md5 = hashlib.md5(usedforsecurity=False)
        part_ids: list[str] = []
        try:
            with path.open("rb") as stream:
                for index in range(parts):
                    start = index * self.part_size
                    length = min(self.part_size, size - start)

                    def report(sent: int, start: int = start, index: int = index) -> None:
                        if progress is not None:
                            progress(UploadProgress(start + sent, size, index + 1, parts))

                    window = _FileSlice(stream, start, length, report)
                    part = await self._call(
                        f"uploading part {index + 1}/{parts} of {path.name}",
                        _cancellable(self._client.uploads.parts.create(
                            upload.id, data=(path.name, cast(IO[bytes], window),
                                             "application/octet-stream")), cancel))
                    part_ids.append(part.id)
                    if cancel is not None and cancel.is_set():
                        raise UploadCancelled("upload cancelled")
                    stream.seek(start)
                    left = length
                    while left > 0 and (chunk := stream.read(min(left, 1 << 20))):
                        md5.update(chunk)
                        left -= len(chunk)
            if cancel is not None and cancel.is_set():
                raise UploadCancelled("upload cancelled")
            done = await self._call(
                f"completing the upload of {path.name}",
                self._client.uploads.complete(upload.id, part_ids=part_ids,
                                              md5=md5.hexdigest()))
        except FilesError:
            with contextlib.suppress(openai.OpenAIError):  # abandoned uploads expire anyway
                await self._client.uploads.cancel(upload.id)
            raise
        if done.file is None:
            raise FilesError(f"the provider completed the upload of {path.name} without a file")
        if cancel is not None and cancel.is_set():
            with contextlib.suppress(openai.OpenAIError):
                await self._client.files.delete(done.file.id)
            raise UploadCancelled("upload cancelled")
        if progress is not None:
            progress(UploadProgress(size, size, parts, parts))
        return FileInfo.from_sdk(done.file)
