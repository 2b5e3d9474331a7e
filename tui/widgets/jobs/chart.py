"""The loss chart of a job: train, valid and full-valid loss by step (textual-plotext)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from textual_plotext import PlotextPlot

SERIES = (("train_loss", "train"), ("valid_loss", "valid"), ("full_valid_loss", "full valid"))
"""Metric names in event data / results CSV, and their legend labels."""


class LossChart(PlotextPlot):
    """Loss by step; fed metrics points as they arrive, redrawn at most once per refresh."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.points: dict[str, dict[float, float]] = {name: {} for name, _ in SERIES}
        """Series name -> step -> value (a step seen twice keeps its latest value)."""

    def clear_points(self) -> None:
        """Forget every point (another job is shown)."""
        for series in self.points.values():
            series.clear()
        self._redraw()

    def add_metrics(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add points from metrics event data or results CSV rows (``step`` plus losses)."""
        changed = False
        for row in rows:
            step = row.get("step")
            if not isinstance(step, int | float):
                continue
            for name, _ in SERIES:
                value = row.get(name)
                if isinstance(value, int | float):
                    self.points[name][float(step)] = float(value)
                    changed = True
        if changed:
            self._redraw()

    @property
    def has_points(self) -> bool:
        """True once any loss was plotted."""
        return any(self.points.values())

    def _redraw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("loss by step")
        for name, label in SERIES:
            series = self.points[name]
            if series:
                steps = sorted(series)
                plt.plot(steps, [series[s] for s in steps], label=label, marker="braille")
        plt.xlabel("step")
        self.refresh()
