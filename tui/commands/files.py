"""``sqltune files upload|list|get|content|delete``: the provider's files, for scripts."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from tui.commands._headless import (
    EXIT_OK,
    EXIT_USAGE,
    Column,
    CommandError,
    ProgressBar,
    call_service,
    emit_json,
    fields,
    open_provider,
    output_width,
    print_object,
    print_page,
    run_command,
    table,
    timestamp,
)
from tui.core.finetune.files import human_size

if TYPE_CHECKING:
    from tui.core.budget.counters import ChatCounter
    from tui.core.data.jsonl import ValidationReport
    from tui.core.finetune.estimate import RealBase
    from tui.core.finetune.files import FileInfo, FileService
    from tui.core.provider.connection import Connection

T = TypeVar("T")

WARNINGS_SHOWN = 5
"""Validator warnings printed before an upload (the rest are counted)."""
FILE_COLUMNS = (Column("ID"), Column("PURPOSE", drop=2), Column("SIZE", right=True),
                Column("CREATED (UTC)", drop=3), Column("STATUS", drop=1),
                Column("FILENAME", flexible=True, minimum=16))


def local_file(path: Path) -> Path:
    """``path`` when it is a readable file; CommandError (exit 2) saying what it is instead."""
    if path.is_dir():
        raise CommandError(f"{path} is a directory, not a file", EXIT_USAGE)
    if not path.is_file():
        raise CommandError(f"{path}: no such file", EXIT_USAGE)
    return path


async def validate_local(path: Path, model: str,
                         counter: ChatCounter | None = None) -> ValidationReport:
    """Validate a fine-tuning file before anything is sent; exit 2 listing its bad lines.

    ``counter``: a real base's own tokenizer counts the tokens and checks its context. Warnings
    are left to ``show_warnings`` (once the model's own count is known)."""
    from tui.core.finetune.files import FileService, InvalidFileError

    try:
        report: ValidationReport = await asyncio.to_thread(FileService.validate, path, model,
                                                           counter)
    except InvalidFileError as error:
        issues = [issue.to_dict() for issue in error.report.errors]
        raise CommandError(str(error), EXIT_USAGE, {"file": str(path), "errors": issues}) from None
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}", EXIT_USAGE) from None
    return report


def show_warnings(path: Path, report: ValidationReport) -> None:
    """The validator's first warnings on stderr, then how many more."""
    shown = report.warnings[:WARNINGS_SHOWN]
    for issue in shown:
        where = f"line {issue.line}: " if issue.line else ""
        print(f"warning: {path.name}: {where}{issue.message}", file=sys.stderr)
    more = len(report.warnings) - len(shown) + report.omitted_warnings
    if more > 0:
        print(f"warning: {path.name}: … and {more} more warnings", file=sys.stderr)


async def upload_validated(service: FileService, path: Path, *, purpose: str = "fine-tune",
                           label: str | None = None) -> FileInfo:
    """Upload an already validated file, with a progress bar when stderr is a terminal."""
    from tui.core.finetune.files import FilesError

    bar = ProgressBar(label or path.name)
    try:
        return await service.upload(path, purpose=purpose, validate=False, progress=bar)
    except FilesError as error:
        raise CommandError(str(error)) from None
    finally:
        bar.close()


async def remember(what: str, record: Callable[[], object]) -> None:
    """Run a lineage record in a thread; a history that cannot be written is only a warning
    (the provider already did the work)."""
    from tui.core.history import HistoryError

    try:
        await asyncio.to_thread(record)
    except (HistoryError, OSError) as error:
        print(f"warning: {what} not recorded in the local history ({error})", file=sys.stderr)


async def find_real_base(provider: Connection, model: str) -> RealBase | None:
    """``model`` as a real base of a sqltune server, with its own token counter; else None."""
    import openai

    from tui.core.finetune.estimate import real_base
    from tui.core.provider.retries import describe_error

    try:
        return await real_base(provider.client, provider.resolved.kind, model)
    except openai.OpenAIError as error:
        raise CommandError(f"reading the server's base models failed: "
                           f"{describe_error(error)}") from None


def file_service(provider: Connection) -> FileService:
    """The core file service on the provider's client."""
    from tui.core.finetune.files import FileService

    return FileService(provider.client, capabilities=provider.resolved.capabilities)


async def call_files(args: argparse.Namespace, call: Callable[[FileService], Awaitable[T]]) -> T:
    """One call of the file service; a FilesError exits 1 with its message."""
    from tui.core.finetune.files import FilesError

    return await call_service(args, file_service, call, FilesError)


def describe_file(info: FileInfo) -> list[str]:
    """``id  file-...`` lines of one file."""
    pairs = [("id", info.id), ("filename", info.filename), ("purpose", info.purpose),
             ("bytes", f"{info.bytes} ({human_size(info.bytes)})"),
             ("created", f"{timestamp(info.created_at)} UTC"), ("status", info.status or "-")]
    expires = info.raw.get("expires_at")
    if expires:
        pairs.append(("expires", f"{timestamp(int(expires))} UTC"))
    if info.raw.get("status_details"):
        pairs.append(("status details", str(info.raw["status_details"])))
    return fields(pairs)


async def _upload(args: argparse.Namespace) -> int:
    from tui.core.finetune.lineage import record_upload

    path = local_file(args.file)
    checked = args.purpose == "fine-tune"
    report = await validate_local(path, args.model) if checked else None
    async with open_provider(args) as provider:
        base = await find_real_base(provider, args.model) if checked else None
        if base is not None:  # counted again with the base's own tokenizer and context
            report = await validate_local(path, args.model, base.counter)
        if report is not None:
            show_warnings(path, report)
        info = await upload_validated(file_service(provider), path, purpose=args.purpose)
        await remember(f"the upload of {path.name}", lambda: record_upload(
            provider.resolved.name, info.id, path))
    print_object(args, info.raw, describe_file(info))
    return EXIT_OK


async def _list(args: argparse.Namespace) -> int:
    page = await call_files(args, lambda files: files.page(
        limit=args.limit, after=args.after, purpose=args.purpose, order=args.order))
    rows = [[f.id, f.purpose, human_size(f.bytes), timestamp(f.created_at), f.status or "-",
             f.filename] for f in page.items]
    lines = table(FILE_COLUMNS, rows, output_width()) if rows else ["no files"]
    return print_page(args, page, lines, "more files")


async def _get(args: argparse.Namespace) -> int:
    info = await call_files(args, lambda files: files.retrieve(args.file_id))
    print_object(args, info.raw, describe_file(info))
    return EXIT_OK


async def _content(args: argparse.Namespace) -> int:
    async def download(files: FileService) -> int:
        try:
            if args.out is None:
                sys.stdout.flush()
                written = await files.download(args.file_id, sys.stdout.buffer)
                sys.stdout.buffer.flush()
                return written
            partial = args.out.with_name(args.out.name + ".part")
            try:
                with partial.open("wb") as sink:
                    written = await files.download(args.file_id, sink)
                os.replace(partial, args.out)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    partial.unlink()
        except OSError as error:
            raise CommandError(f"cannot write {args.out}: {error.strerror or error}") from None
        return written

    written = await call_files(args, download)
    if args.out is not None:
        print(f"wrote {written} bytes to {args.out}", file=sys.stderr)
    return EXIT_OK


async def _delete(args: argparse.Namespace) -> int:
    result = await call_files(args, lambda files: files.delete_object(args.file_id))
    if args.json:
        emit_json(result)
    elif result.get("deleted"):
        print(f"deleted {result.get('id', args.file_id)}")
    else:
        raise CommandError(f"the provider did not delete {args.file_id}")
    return EXIT_OK


ACTIONS = {"upload": _upload, "list": _list, "get": _get, "content": _content,
           "delete": _delete}


def run(args: argparse.Namespace) -> int:
    """Entry point from tui.cli (the action is ``args.files_command``)."""
    action = ACTIONS[args.files_command]
    return run_command(f"sqltune files {args.files_command}", args, lambda: action(args))
