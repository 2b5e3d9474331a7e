"""Text cut to a width for tables and lists (the app's panes and the headless CLI): in the
middle (names, ids) or at the end."""

from __future__ import annotations


def elide_middle(text: str, width: int) -> str:
    """``text`` in ``width`` cells, cut in the middle: the start and the end (an extension, an
    id's last characters) both stay."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:max(0, width)]
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def elide_end(text: str, width: int) -> str:
    """``text`` in ``width`` cells, cut at the end with an ellipsis."""
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"
