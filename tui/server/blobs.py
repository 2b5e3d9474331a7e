"""The server's blob folder: every write lands atomically (temp file, fsync, rename)."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

KINDS = ("files", "parts", "checkpoints", "models", "state")


class BlobStore:
    """Blobs under ``root/blobs/<kind>/<name>``; temp files live in ``root/tmp`` until renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root / "blobs"
        """Where finished blobs live."""
        self.tmp = root / "tmp"
        """Where blobs are written before their atomic rename (cleared on start)."""
        for kind in KINDS:
            (self.root / kind).mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def clear_tmp(self) -> int:
        """Delete temp files a killed process left behind; return how many there were."""
        count = 0
        for leftover in self.tmp.iterdir():
            with contextlib.suppress(OSError):
                if leftover.is_dir():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink()
                count += 1
        return count

    def path(self, kind: str, name: str) -> Path:
        """The final path of blob ``name`` of ``kind``."""
        if kind not in KINDS or "/" in name or name.startswith("."):
            raise ValueError(f"bad blob reference {kind}/{name}")
        return self.root / kind / name

    def temp_file(self) -> tuple[Path, BinaryIO]:
        """A new temp file opened for writing; finish it with ``commit``."""
        path = self.tmp / f"{uuid.uuid4().hex}.part"
        return path, path.open("wb")

    def commit(self, temp: Path, handle: BinaryIO, kind: str, name: str) -> Path:
        """fsync ``handle``, close it and rename ``temp`` to the blob's final path."""
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        final = self.path(kind, name)
        os.replace(temp, final)
        _fsync_dir(final.parent)
        return final

    def discard(self, temp: Path, handle: BinaryIO) -> None:
        """Close and delete an unfinished temp file."""
        with contextlib.suppress(OSError):
            handle.close()
        with contextlib.suppress(OSError):
            temp.unlink()

    def write(self, kind: str, name: str, data: bytes) -> Path:
        """Write ``data`` as blob ``kind/name`` atomically."""
        temp, handle = self.temp_file()
        try:
            handle.write(data)
            return self.commit(temp, handle, kind, name)
        except BaseException:
            self.discard(temp, handle)
            raise

    def concat(self, kind: str, name: str, sources: Iterable[Path]) -> Path:
        """Write the concatenation of ``sources`` as blob ``kind/name`` atomically."""
        temp, handle = self.temp_file()
        try:
            for source in sources:
                with source.open("rb") as part:
                    shutil.copyfileobj(part, handle, 1 << 20)
            return self.commit(temp, handle, kind, name)
        except BaseException:
            self.discard(temp, handle)
            raise

    def read(self, kind: str, name: str) -> bytes:
        """The bytes of blob ``kind/name``."""
        return self.path(kind, name).read_bytes()

    def delete(self, kind: str, name: str) -> None:
        """Remove blob ``kind/name`` when it exists."""
        with contextlib.suppress(FileNotFoundError):
            self.path(kind, name).unlink()


def _fsync_dir(folder: Path) -> None:
    # A rename is durable only once its directory entry is flushed.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
