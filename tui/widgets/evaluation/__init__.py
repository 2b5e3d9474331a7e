"""The evaluation pane: EX, cost and speed of models on a split, compared across runs."""

from tui.widgets.evaluation.pane import EvaluationPane

__all__ = ["EvaluationPane"]
