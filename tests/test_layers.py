"""What the import contracts cannot say themselves (lint-imports checks the contracts in CI)."""

from __future__ import annotations

import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _contract(contract_id: str) -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    return next(contract for contract in contracts if contract.get("id") == contract_id)


def test_headless_contract_names_every_installed_textual_package() -> None:
    # import-linter takes root package names, not a prefix: each textual* one is listed.
    forbidden = set(_contract("headless")["forbidden_modules"])
    installed = {name for name in packages_distributions() if name.startswith("textual")}
    assert "textual" in installed
    assert installed <= forbidden, f"add to the headless contract: {installed - forbidden}"
