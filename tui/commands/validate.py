"""``sqltune validate FILE``: check a chat JSONL as the provider would before fine-tuning."""

from __future__ import annotations

import argparse
import json
import sys

from tui.core.data.jsonl import ValidationReport, validate_jsonl


def run(args: argparse.Namespace) -> int:
    """Print the report (JSON with ``--json``); exit 0 when valid, 1 when not, 2 when unreadable."""
    path = args.file
    if path.is_dir():
        print(f"sqltune validate: {path}: is a directory; give a .jsonl file "
              "(sqltune prepare DIR makes one)", file=sys.stderr)
        return 2
    if not path.is_file():
        print(f"sqltune validate: {path}: no such file", file=sys.stderr)
        return 2
    try:
        report = validate_jsonl(path, args.model)
    except OSError as error:
        print(f"sqltune validate: {path}: cannot read ({error.strerror or error})", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print(render_text(report, str(path)))
    return 0 if report.ok else 1


def render_text(report: ValidationReport, name: str) -> str:
    """The report as lines a person reads in a terminal."""
    verdict = "valid" if report.ok else "INVALID"
    errors = len(report.errors) + report.omitted_errors
    warnings = len(report.warnings) + report.omitted_warnings
    lines = [f"{name}: {verdict}, {report.examples} examples, {errors} errors, "
             f"{warnings} warnings"]
    for label, issues, omitted in (("error", report.errors, report.omitted_errors),
                                   ("warning", report.warnings, report.omitted_warnings)):
        for issue in issues:
            where = f"line {issue.line}" if issue.line else "file"
            field = f" {issue.field}" if issue.field else ""
            lines.append(f"  {label}: {where}{field}: {issue.message} [{issue.code}]")
        if omitted:
            lines.append(f"  ... and {omitted} more {label}s")
    if report.max_example_tokens is not None:
        lines.append(f"  tokens: {report.total_tokens:,} in all, longest example "
                     f"{report.max_example_tokens:,} (context {report.context_limit:,})")
    if report.note:
        lines.append(f"  note: {report.note}")
    return "\n".join(lines)
