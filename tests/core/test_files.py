"""FileService against the local server over loopback, with the official openai SDK."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import openai
import pytest

from tests.chat_files import write_singer_jsonl
from tui.core.finetune.files import (
    FilesError,
    FileService,
    InvalidFileError,
    UploadCancelled,
    UploadProgress,
    _cancellable,
)
from tui.core.provider.providers import (
    install_secret_redaction,
    make_async_client,
    resolve_provider,
)
from tui.server.inprocess import LocalServer, start_local_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with start_local_server(tmp_path_factory.mktemp("server"), speed="max") as running:
        yield running


@pytest.fixture
async def client(server: LocalServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = make_async_client(resolve_provider("local", start_local=lambda: server))
    yield client
    await client.close()


async def test_small_upload_streams_with_progress(client: openai.AsyncOpenAI,
                                                  tmp_path: Path) -> None:
    path = write_singer_jsonl(tmp_path / "train.jsonl", 40)
    seen: list[UploadProgress] = []
    service = FileService(client)
    info = await service.upload(path, progress=seen.append)
    size = path.stat().st_size
    assert (info.filename, info.bytes, info.purpose) == ("train.jsonl", size, "fine-tune")
    assert seen[-1].sent == size and seen[-1].fraction == 1.0
    assert [p.sent for p in seen] == sorted(p.sent for p in seen)
    assert await service.content(info.id) == path.read_bytes()
    listed = await service.list(purpose="fine-tune")
    assert info.id in [f.id for f in listed]
    assert (await service.retrieve(info.id)).bytes == size


async def test_large_file_goes_through_the_uploads_api_in_parts(client: openai.AsyncOpenAI,
                                                                tmp_path: Path) -> None:
    path = write_singer_jsonl(tmp_path / "big.jsonl", 120)
    size = path.stat().st_size
    service = FileService(client, part_size=8 * 1024, multipart_threshold=10 * 1024)
    seen: list[UploadProgress] = []
    info = await service.upload(path, progress=seen.append)
    parts = -(-size // (8 * 1024))
    assert parts > 2
    assert {p.parts for p in seen} == {parts}
    assert [p.part for p in seen] == sorted(p.part for p in seen)
    assert seen[-1].sent == size
    assert await service.content(info.id) == path.read_bytes()


async def test_invalid_file_is_refused_before_upload(client: openai.AsyncOpenAI,
                                                     tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.loads(write_singer_jsonl(tmp_path / "g.jsonl", 1).read_text())
    lines = [json.dumps(good), "{not json", json.dumps({"messages": [{"role": "wizard",
                                                                      "content": "x"}]})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    service = FileService(client)
    before = {f.id for f in await service.list()}
    with pytest.raises(InvalidFileError) as info:
        await service.upload(path)
    assert info.value.errors and any(e.startswith("line 2") for e in info.value.errors)
    assert "line 3" in str(info.value)
    assert {f.id for f in await service.list()} == before  # nothing reached the server


async def test_cancel_single_and_multipart_uploads(client: openai.AsyncOpenAI,
                                                   tmp_path: Path) -> None:
    path = write_singer_jsonl(tmp_path / "train.jsonl", 120)
    for service in (FileService(client),
                    FileService(client, part_size=8 * 1024, multipart_threshold=1024)):
        before = {f.id for f in await service.list()}
        cancel = asyncio.Event()

        def stop_early(progress: UploadProgress, cancel: asyncio.Event = cancel) -> None:
            if progress.sent > 0:
                cancel.set()

        with pytest.raises(UploadCancelled):
            await service.upload(path, progress=stop_early, cancel=cancel)
        assert {f.id for f in await service.list()} == before


async def test_cancelling_the_uploading_task_propagates(client: openai.AsyncOpenAI,
                                                        tmp_path: Path) -> None:
    path = write_singer_jsonl(tmp_path / "train.jsonl", 120)
    loop = asyncio.get_running_loop()
    for service in (FileService(client),
                    FileService(client, part_size=8 * 1024, multipart_threshold=1024)):
        before = {f.id for f in await service.list()}
        running: list[asyncio.Task[object]] = []

        def stop_early(progress: UploadProgress, running: list[asyncio.Task[object]] = running,
                       ) -> None:
            if progress.sent > 0 and running:
                loop.call_soon_threadsafe(running[0].cancel)

        running.append(asyncio.create_task(service.upload(path, progress=stop_early,
                                                          cancel=asyncio.Event())))
        with pytest.raises(asyncio.CancelledError):  # not UploadCancelled: nobody pressed cancel
            await running[0]
        await asyncio.sleep(0.3)  # a request left running would have created its file by now
        assert {f.id for f in await service.list()} == before


async def test_a_cancel_while_abandoning_the_request_still_propagates() -> None:
    started, cleaning = asyncio.Event(), asyncio.Event()
    outcome: list[str] = []

    async def request() -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cleaning.set()
            await asyncio.sleep(0.2)  # an HTTP request takes a moment to wind down
            outcome.append("request cancelled")
            raise
        return "uploaded"

    cancel = asyncio.Event()
    task = asyncio.create_task(_cancellable(request(), cancel))
    await started.wait()
    cancel.set()  # the user cancels the upload: the request is being abandoned...
    await cleaning.wait()
    task.cancel()  # ...when the app itself cancels the uploading worker
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)
    assert outcome == ["request cancelled"]


async def test_a_cancelled_caller_cancels_the_request() -> None:
    started = asyncio.Event()
    outcome: list[str] = []

    async def request() -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            outcome.append("request cancelled")
            raise
        return "uploaded"

    task = asyncio.create_task(_cancellable(request(), asyncio.Event()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert outcome == ["request cancelled"]


async def test_head_and_delete(client: openai.AsyncOpenAI, tmp_path: Path) -> None:
    path = write_singer_jsonl(tmp_path / "train.jsonl", 50)
    service = FileService(client)
    info = await service.upload(path)
    head = await service.content_head(info.id, lines=3)
    assert head == path.read_text(encoding="utf-8").splitlines()[:3]
    assert await service.delete(info.id)
    with pytest.raises(FilesError, match="HTTP 404"):
        await service.retrieve(info.id)


async def test_a_wrong_key_never_appears_in_errors_or_logs(
        server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "sk-wrong-0123456789abcdefghijklmnopqrstuv"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    install_secret_redaction()
    resolved = resolve_provider(None)
    assert resolved.source == "env"
    service = FileService(make_async_client(resolved, max_retries=0))
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("openai").setLevel(logging.DEBUG)
        with pytest.raises(FilesError) as info:
            await service.upload(write_singer_jsonl(tmp_path / "t.jsonl", 20))
        logging.getLogger("tui").error("upload failed: %s with %s", info.value, resolved)
        logging.getLogger("openai").setLevel(logging.NOTSET)
    assert "refused the API key" in str(info.value)
    assert wrong not in str(info.value) and wrong not in repr(info.value)
    assert caplog.records and wrong not in caplog.text
