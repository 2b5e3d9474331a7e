"""Files and uploads through the official SDK: multipart files, paging, parts assembled."""

from __future__ import annotations

import hashlib

import openai
import pytest

from tests.server.conftest import Recorder
from tui.server.inprocess import LocalServer


def test_file_lifecycle(client: openai.OpenAI, train_bytes: bytes, server: LocalServer) -> None:
    created = client.files.create(file=("train.jsonl", train_bytes), purpose="fine-tune")
    assert created.id.startswith("file-") and created.bytes == len(train_bytes)
    assert (created.filename, created.purpose, created.status) == ("train.jsonl", "fine-tune",
                                                                    "processed")
    assert client.files.retrieve(created.id) == created
    assert client.files.content(created.id).content == train_bytes
    blob = server.data_dir / "blobs" / "files" / created.id
    assert blob.read_bytes() == train_bytes
    deleted = client.files.delete(created.id)
    assert deleted.deleted and deleted.id == created.id
    assert not blob.exists()
    with pytest.raises(openai.NotFoundError) as missing:
        client.files.retrieve(created.id)
    assert missing.value.body["message"] == f"No such File object: {created.id}"  # type: ignore[index]


def test_file_list_purpose_order_and_paging(client: openai.OpenAI) -> None:
    ids = [client.files.create(file=(f"f{i}.jsonl", b"{}\n"), purpose="fine-tune").id
           for i in range(5)]
    other = client.files.create(file=("notes.txt", b"hello"), purpose="user_data").id
    newest_first = [f.id for f in client.files.list(purpose="fine-tune")]
    assert newest_first == ids[::-1]
    page = client.files.list(purpose="fine-tune", limit=2, order="asc")
    assert [f.id for f in page.data] == ids[:2] and page.has_more
    assert [f.id for f in client.files.list(purpose="fine-tune", limit=2, order="asc")] == ids
    assert other in [f.id for f in client.files.list()]
    assert [f.id for f in client.files.list(purpose="user_data")] == [other]


def test_file_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as wrong_type:
        client.files.create(file=("train.csv", b"a,b\n"), purpose="fine-tune")
    assert "jsonl" in wrong_type.value.message
    with pytest.raises(openai.BadRequestError) as purpose:
        client.files.create(file=("x.jsonl", b"{}\n"), purpose="bogus")  # type: ignore[arg-type]
    assert purpose.value.param == "purpose"
    with pytest.raises(openai.NotFoundError):
        client.files.delete("file-nope")
    with pytest.raises(openai.BadRequestError):
        client.files.list(limit=0)


def test_upload_parts_become_a_file_only_when_complete(client: openai.OpenAI,
                                                       train_bytes: bytes,
                                                       recorder: Recorder) -> None:
    upload = client.uploads.create(bytes=len(train_bytes), filename="train.jsonl",
                                   mime_type="application/jsonl", purpose="fine-tune")
    assert upload.status == "pending" and upload.file is None
    assert upload.expires_at == upload.created_at + 3600
    cut = len(train_bytes) // 3
    chunks = [train_bytes[:cut], train_bytes[cut:2 * cut], train_bytes[2 * cut:]]
    parts = [client.uploads.parts.create(upload.id, data=chunk) for chunk in chunks]
    assert all(part.upload_id == upload.id for part in parts)
    assert client.files.list().data == []  # not visible before complete
    done = client.uploads.complete(upload.id, part_ids=[p.id for p in parts],
                                   md5=hashlib.md5(train_bytes).hexdigest())
    assert done.status == "completed" and done.file is not None
    assert done.file.bytes == len(train_bytes) and done.file.purpose == "fine-tune"
    assert client.files.content(done.file.id).content == train_bytes
    assert [f.id for f in client.files.list()] == [done.file.id]
    with pytest.raises(openai.BadRequestError):  # completed uploads take no more parts
        client.uploads.parts.create(upload.id, data=b"more")
    assert {"Upload", "UploadPart", "ListFilesResponse"} <= recorder.validate()


def test_upload_order_size_check_and_cancel(client: openai.OpenAI) -> None:
    upload = client.uploads.create(bytes=6, filename="x.jsonl", mime_type="text/jsonl",
                                   purpose="fine-tune")
    first = client.uploads.parts.create(upload.id, data=b"abc")
    second = client.uploads.parts.create(upload.id, data=b"def")
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(upload.id, part_ids=[first.id])  # 3 of 6 bytes
    with pytest.raises(openai.BadRequestError) as md5:
        client.uploads.complete(upload.id, part_ids=[second.id, first.id], md5="0" * 32)
    assert md5.value.param == "md5"
    done = client.uploads.complete(upload.id, part_ids=[second.id, first.id])
    assert done.file is not None
    assert client.files.content(done.file.id).content == b"defabc"
    cancelled_upload = client.uploads.create(bytes=3, filename="y.jsonl",
                                             mime_type="text/jsonl", purpose="fine-tune")
    client.uploads.parts.create(cancelled_upload.id, data=b"abc")
    cancelled = client.uploads.cancel(cancelled_upload.id)
    assert cancelled.status == "cancelled" and cancelled.file is None
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(cancelled_upload.id, part_ids=[])
    with pytest.raises(openai.NotFoundError):
        client.uploads.cancel("upload_nope")


def test_sdk_chunked_upload_helper(client: openai.OpenAI, train_bytes: bytes, tmp_path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(train_bytes)
    done = client.uploads.upload_file_chunked(file=path, mime_type="application/jsonl",
                                              purpose="fine-tune", part_size=4096)
    assert done.status == "completed" and done.file is not None
    assert client.files.content(done.file.id).content == train_bytes
