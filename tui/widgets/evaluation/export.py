"""Where to export a report: a name in the exports folder or a path (NAME.csv and NAME.json);
confirm overwrites."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from textual.widget import Widget

from tui.core.evaluation.report import EvalReport


def export_base(path: Path) -> Path:
    """``a/b.csv`` or ``a/b.json`` -> ``a/b``: both files are written next to each other."""
    return path.with_suffix("") if path.suffix.lower() in (".csv", ".json") else path


def export_paths(base: Path) -> list[Path]:
    """The CSV (one row per question) and the JSON (summary and questions)."""
    return [base.with_name(base.name + ".csv"), base.with_name(base.name + ".json")]


def suggested_name(report: EvalReport) -> str:
    """``sqltune-eval-<model>-<split>``, safe as a file name."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", report.model or "predictions").strip("-")
    return f"sqltune-eval-{slug}-{report.split or 'split'}"


def ask_export(widget: Widget, report: EvalReport,
               write: Callable[[EvalReport, list[Path]], object]) -> None:
    """Ask for the name (in the exports folder) or a path; when a file is already there, ask
    before overwriting; then `write`."""
    from tui.core.paths import exports_dir
    from tui.screens.confirm import ConfirmScreen
    from tui.screens.export_dialog import ReportExportDialog

    def confirmed(paths: list[Path]) -> Callable[[bool | None], None]:
        def answered(yes: bool | None) -> None:
            if yes:
                write(report, paths)

        return answered

    def chosen(target: Path | None) -> None:
        if target is None:
            return
        paths = export_paths(export_base(target))
        existing = [path.name for path in paths if path.exists()]
        if not existing:
            write(report, paths)
            return
        widget.app.push_screen(ConfirmScreen(f"Overwrite {' and '.join(existing)}?",
                                             yes="Overwrite"), confirmed(paths))

    widget.app.push_screen(ReportExportDialog(suggested_name(report), exports_dir()), chosen)
