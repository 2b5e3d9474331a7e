"""The SQL playground pane: ask a model, run its SQL read-only, score it, compare two models."""

from tui.widgets.playground.pane import PlaygroundPane

__all__ = ["PlaygroundPane"]
