"""Files and uploads endpoints: multipart files, and parts assembled into a File on complete."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any, BinaryIO

from aiohttp import BodyPartReader, web

from tui.server.context import ctx, query_limit, read_json, respond
from tui.server.errors import ApiError, bad_request, not_found
from tui.server.store import new_id, now

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
"""Purposes a client may upload with (``fine-tune-results`` is the server's own)."""
MAX_UPLOAD_BYTES = 8 * 1024**3
"""OpenAI's Upload size limit."""
UPLOAD_TTL_S = 3600
"""Uploads expire an hour after creation."""
CHUNK = 1 << 16


def _check_purpose(purpose: str | None, filename: str | None) -> str:
    if not purpose:
        raise bad_request("Missing required parameter: 'purpose'.", param="purpose")
    if purpose not in PURPOSES:
        raise bad_request(f"'{purpose}' is not one of {list(PURPOSES)} - 'purpose'",
                          param="purpose")
    if purpose == "fine-tune" and filename is not None and not filename.endswith(".jsonl"):
        raise bad_request("Invalid file format for Fine-Tuning API. Must be .jsonl",
                          param="file")
    return purpose


async def _stream_to(part: BodyPartReader, handle: BinaryIO) -> int:
    size = 0
    while chunk := await part.read_chunk(CHUNK):
        handle.write(chunk)
        size += len(chunk)
    return size


async def create_file(request: web.Request) -> web.Response:
    """POST /v1/files (multipart: file, purpose, expires_after[anchor|seconds])."""
    server = ctx(request)
    if not request.content_type.startswith("multipart/"):
        raise bad_request("The request must be multipart/form-data with 'file' and 'purpose'.")
    reader = await request.multipart()
    fields: dict[str, str] = {}
    temp: Path | None = None
    handle: BinaryIO | None = None
    size, filename = 0, None
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file" and temp is None:
                filename = part.filename or "upload"
                temp, handle = server.blobs.temp_file()
                size = await _stream_to(part, handle)
            elif part.name:
                fields[part.name] = (await part.text()).strip()
        if temp is None or handle is None:
            raise bad_request("Missing required parameter: 'file'.", param="file")
        purpose = _check_purpose(fields.get("purpose"), filename)
        expires_at = _expiry(fields)
        file_id = new_id("file-", 22)
        await asyncio.to_thread(server.blobs.commit, temp, handle, "files", file_id)
        temp = None
    except BaseException:
        if temp is not None and handle is not None:
            server.blobs.discard(temp, handle)
        raise
    return respond(server.store.add_file(file_id, size=size, filename=filename or "upload",
                                         purpose=purpose, expires_at=expires_at))


def _expiry(fields: dict[str, str]) -> int | None:
    seconds = fields.get("expires_after[seconds]")
    if seconds is None:
        return None
    try:
        value = int(seconds)
    except ValueError:
        raise bad_request("expires_after[seconds] must be an integer.",
                          param="expires_after.seconds") from None
    if not 3600 <= value <= 2_592_000:
        raise bad_request("expires_after[seconds] must be between 3600 and 2592000.",
                          param="expires_after.seconds")
    return now() + value


async def list_files(request: web.Request) -> web.Response:
    """GET /v1/files?purpose=&order=asc|desc&after=&limit="""
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request(f"Invalid 'order': expected 'asc' or 'desc', got '{order}'.",
                          param="order")
    page = ctx(request).store.list_files(
        purpose=request.query.get("purpose") or None, after=request.query.get("after") or None,
        limit=query_limit(request, 10_000, 10_000), desc=order == "desc")
    return respond(page.body(with_ids=True))


def _file(request: web.Request) -> dict[str, Any]:
    file_id = request.match_info["file_id"]
    found = ctx(request).store.get_file(file_id)
    if found is None:
        raise not_found("File", file_id, param="file_id")
    return found


async def retrieve_file(request: web.Request) -> web.Response:
    """GET /v1/files/{file_id}"""
    return respond(_file(request))


async def delete_file(request: web.Request) -> web.Response:
    """DELETE /v1/files/{file_id}"""
    found = _file(request)
    server = ctx(request)
    server.store.delete_file(found["id"])
    server.blobs.delete("files", found["id"])
    return respond({"id": found["id"], "object": "file", "deleted": True})


async def file_content(request: web.Request) -> web.Response:
    """GET /v1/files/{file_id}/content"""
    found = _file(request)
    data = await asyncio.to_thread(ctx(request).blobs.read, "files", found["id"])
    return web.Response(body=data, content_type="application/octet-stream")


# uploads ---------------------------------------------------------------------------------
def _upload_object(row: dict[str, Any], file: dict[str, Any] | None = None) -> dict[str, Any]:
    status = row["status"]
    if status == "pending" and row["expires_at"] <= now():
        status = "expired"
    return {"id": row["id"], "object": "upload", "bytes": row["bytes"],
            "created_at": row["created_at"], "filename": row["filename"],
            "purpose": row["purpose"], "status": status, "expires_at": row["expires_at"],
            "file": file}


def _pending_upload(request: web.Request) -> dict[str, Any]:
    upload_id = request.match_info["upload_id"]
    row = ctx(request).store.get_upload(upload_id)
    if row is None:
        raise not_found("Upload", upload_id, param="upload_id")
    status = _upload_object(row)["status"]
    if status != "pending":
        raise bad_request(f"Upload {upload_id} is {status}; it no longer accepts changes.",
                          param="upload_id")
    return row


async def create_upload(request: web.Request) -> web.Response:
    """POST /v1/uploads {bytes, filename, mime_type, purpose}"""
    body = await read_json(request)
    for name in ("bytes", "filename", "mime_type", "purpose"):
        if body.get(name) is None:
            raise bad_request(f"Missing required parameter: '{name}'.", param=name)
    size = body["bytes"]
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_UPLOAD_BYTES:
        raise bad_request("'bytes' must be an integer from 0 to 8 GB.", param="bytes")
    filename = str(body["filename"])
    purpose = _check_purpose(str(body["purpose"]), filename)
    created = now()
    row = {"id": new_id("upload_"), "created_at": created, "expires_at": created + UPLOAD_TTL_S,
           "filename": filename, "purpose": purpose, "bytes": size, "status": "pending"}
    ctx(request).store.add_upload(row, str(body["mime_type"]))
    return respond(_upload_object(row))


async def add_part(request: web.Request) -> web.Response:
    """POST /v1/uploads/{upload_id}/parts (multipart: data)"""
    server = ctx(request)
    row = _pending_upload(request)
    if not request.content_type.startswith("multipart/"):
        raise bad_request("The request must be multipart/form-data with a 'data' part.")
    reader = await request.multipart()
    part_id, size = new_id("part_"), None
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and part.name == "data" and size is None:
            temp, handle = server.blobs.temp_file()
            try:
                size = await _stream_to(part, handle)
                await asyncio.to_thread(server.blobs.commit, temp, handle, "parts", part_id)
            except BaseException:
                server.blobs.discard(temp, handle)
                raise
    if size is None:
        raise bad_request("Missing required parameter: 'data'.", param="data")
    current = server.store.get_upload(row["id"])
    if current is None or current["status"] != "pending":  # cancelled while the part streamed
        server.blobs.delete("parts", part_id)
        raise bad_request(f"Upload {row['id']} no longer accepts parts.", param="upload_id")
    created = server.store.add_part(part_id, row["id"], size)
    return respond({"id": part_id, "object": "upload.part", "created_at": created,
                    "upload_id": row["id"]})


async def complete_upload(request: web.Request) -> web.Response:
    """POST /v1/uploads/{upload_id}/complete {part_ids, md5?}: the parts become one File."""
    server = ctx(request)
    row = _pending_upload(request)
    body = await read_json(request)
    part_ids = body.get("part_ids")
    if not isinstance(part_ids, list) or not all(isinstance(p, str) for p in part_ids):
        raise bad_request("Missing required parameter: 'part_ids'.", param="part_ids")
    known = server.store.parts(row["id"])
    unknown = [part for part in part_ids if part not in known]
    if unknown:
        raise bad_request(f"Part {unknown[0]} does not belong to upload {row['id']}.",
                          param="part_ids")
    total = sum(known[part] for part in part_ids)
    if total != row["bytes"]:
        raise bad_request(f"The upload's parts add up to {total} bytes, but {row['bytes']} "
                          "bytes were declared when it was created.", param="part_ids")
    file_id = new_id("file-", 22)
    paths = [server.blobs.path("parts", part) for part in part_ids]
    await asyncio.to_thread(server.blobs.concat, "files", file_id, paths)
    md5 = body.get("md5")
    if md5:
        digest = await asyncio.to_thread(_md5, server.blobs.path("files", file_id))
        if digest != str(md5).lower():
            server.blobs.delete("files", file_id)
            raise ApiError(400, "The md5 checksum of the assembled file does not match 'md5'.",
                           param="md5")
    file = server.store.add_file(file_id, size=total, filename=row["filename"],
                                 purpose=row["purpose"])
    server.store.set_upload_status(row["id"], "completed", file_id)
    for part in server.store.delete_parts(row["id"]):
        server.blobs.delete("parts", part)
    row["status"] = "completed"
    return respond(_upload_object(row, file))


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def cancel_upload(request: web.Request) -> web.Response:
    """POST /v1/uploads/{upload_id}/cancel"""
    server = ctx(request)
    row = _pending_upload(request)
    server.store.set_upload_status(row["id"], "cancelled")
    for part in server.store.delete_parts(row["id"]):
        server.blobs.delete("parts", part)
    row["status"] = "cancelled"
    return respond(_upload_object(row))


def add_routes(app: web.Application) -> None:
    """Register the files and uploads routes under /v1."""
    app.router.add_post("/v1/files", create_file)
    app.router.add_get("/v1/files", list_files)
    app.router.add_get("/v1/files/{file_id}", retrieve_file)
    app.router.add_delete("/v1/files/{file_id}", delete_file)
    app.router.add_get("/v1/files/{file_id}/content", file_content)
    app.router.add_post("/v1/uploads", create_upload)
    app.router.add_post("/v1/uploads/{upload_id}/parts", add_part)
    app.router.add_post("/v1/uploads/{upload_id}/complete", complete_upload)
    app.router.add_post("/v1/uploads/{upload_id}/cancel", cancel_upload)
