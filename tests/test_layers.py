"""The layering rules of DESIGN.md, checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tui"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("layer", ["core", "server"])
def test_layer_never_imports_textual(layer: str) -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for name in _imports(path)
        if name == "textual" or name.startswith(("textual.", "textual_"))
    ]
    assert offenders == []


def test_core_never_imports_server_or_app() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / "core").rglob("*.py"))
        for name in _imports(path)
        if name.startswith(("tui.server", "tui.app", "tui.widgets", "tui.screens"))
    ]
    assert offenders == []


def test_app_never_imports_server_directly() -> None:
    ui_files = [PACKAGE / "app.py", *(PACKAGE / "widgets").rglob("*.py"),
                *(PACKAGE / "screens").rglob("*.py")]
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in ui_files
        if path.is_file()
        for name in _imports(path)
        if name.startswith("tui.server")
    ]
    assert offenders == []


def test_layer_rule_detects_an_offender(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("from textual.app import App\nimport os\n", encoding="utf-8")
    assert "textual.app" in _imports(sample)
