"""The preview's text pieces: the highlighted example's detail and the table's cells."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from tui.widgets.preview.source import Row


def tokens_cell(tokens: int | None) -> str:
    """The table's token cell: the count, or — when the example cannot be rendered."""
    return "—" if tokens is None else str(tokens)


def clip(text: str, width: int) -> str:
    """One line of at most ``width`` characters (an ellipsis marks a cut)."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def position_text(label: str, current: int, total: int, page: int, page_size: int,
                  problems: dict[int, list[str]] | None, warnings: int = 0) -> str:
    """``demo · train 3/153 p1/2 · 0 problems · 1 warning``: where the cursor is, how many
    examples have problems, and how many problems concern no single example (a broken file)."""
    pages = max(1, -(-total // page_size))
    if problems is None:
        found = "checking…"
    else:
        n = len([i for i in problems if i >= 0])
        found = f"{n} problem{'s' if n != 1 else ''}"
    if warnings:
        found += f" · {warnings} warning{'s' if warnings != 1 else ''}"
    return f"{label} {current:,}/{total:,} p{page + 1}/{pages} · {found}"


def warnings_text(warnings: list[str]) -> Text:
    """The problems of no single example, one per line, as ``sqltune prepare`` words them."""
    return Text("\n".join(f"⚠ {warning}" for warning in warnings), style="bold yellow")


def detail_renderable(row: Row, messages: list[dict[str, Any]], tokens: int | None,
                      problems: list[str]) -> RenderableType:
    """The highlighted example: where it is from, problems, SQL, then its chat messages."""
    head = Text()
    head.append(f"#{row.index + 1} ", style="bold")
    head.append(row.db_id or "no database", style="bold cyan")
    head.append(f" · {row.where}", style="dim")
    if tokens is not None:
        head.append(f" · {tokens:,} tokens", style="bold")
    parts: list[RenderableType] = [head]
    for problem in problems:
        parts.append(Text(f"! {problem}", style="bold red"))
    parts.append(Text(row.question, style="italic"))
    from rich.syntax import Syntax  # pygments: loaded with the first detail, not at start-up

    parts.append(Syntax(row.sql, "sql", word_wrap=True, theme="ansi_dark",
                        background_color="default"))
    for message in messages:
        role = str(message.get("role", "?"))
        content = message.get("content")
        text = content if isinstance(content, str) else str(content)
        parts.append(Text(f"── {role} ", style="bold magenta"))
        parts.append(Text(text))
    return Group(*parts)
