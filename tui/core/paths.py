"""Where sqltune finds its shipped assets and keeps its config and state."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "sqltune"


def assets_dir() -> Path:
    """The shipped assets folder: ``assets/`` in a checkout, ``tui/_assets`` in a wheel."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / "assets", here / "_assets"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("sqltune's assets folder is missing from this installation")


def demo_dir() -> Path:
    """The bundled Spider-format demo dataset."""
    return assets_dir() / "demo"


def config_dir() -> Path:
    """Config folder; ``SQLTUNE_CONFIG_DIR`` overrides the platform default (tests use it)."""
    override = os.environ.get("SQLTUNE_CONFIG_DIR")
    return Path(override) if override else platformdirs.user_config_path(APP_NAME)


def data_dir() -> Path:
    """State folder (history, local server data); ``SQLTUNE_DATA_DIR`` overrides it."""
    override = os.environ.get("SQLTUNE_DATA_DIR")
    return Path(override) if override else platformdirs.user_data_path(APP_NAME)


def spider_dir() -> Path | None:
    """The shared Spider training data next to the checkout, when present (tests, benches)."""
    override = os.environ.get("SQLTUNE_SPIDER_DIR")
    candidate = (
        Path(override)
        if override
        else Path(__file__).resolve().parents[3] / "shared" / "spider-train"
    )
    return candidate if (candidate / "tables.json").is_file() else None


def exports_dir() -> Path:
    """Where the app writes what it exports (training JSONL, evaluation reports) unless told
    otherwise: ``exports`` in the state folder, never the current directory."""
    return data_dir() / "exports"
