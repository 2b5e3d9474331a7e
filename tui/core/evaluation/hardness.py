"""Spider's hardness levels (easy, medium, hard, extra) and the rule of its evaluation.py that
grades a statement's component counts (tui.core.evaluation.components counts them in SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Hardness = Literal["easy", "medium", "hard", "extra"]
LEVELS: tuple[Hardness, ...] = ("easy", "medium", "hard", "extra")


class HardnessError(ValueError):
    """The SQL could not be parsed, so it has no hardness."""


@dataclass(frozen=True)
class HardnessCounts:
    """Spider's three counts for one statement."""

    component1: int
    """WHERE, GROUP BY, ORDER BY, LIMIT, each extra table, each OR, each LIKE."""
    component2: int
    """Nested queries in conditions, plus INTERSECT/UNION/EXCEPT."""
    others: int
    """Rules met: aggregates > 1, select columns > 1, where conditions > 1, group by > 1."""

    @property
    def level(self) -> Hardness:
        """eval_hardness() of Spider's evaluation.py, rule for rule."""
        c1, c2, others = self.component1, self.component2, self.others
        if c1 <= 1 and others == 0 and c2 == 0:
            return "easy"
        if (others <= 2 and c1 <= 1 and c2 == 0) or (c1 <= 2 and others < 2 and c2 == 0):
            return "medium"
        if ((others > 2 and c1 <= 2 and c2 == 0) or (2 < c1 <= 3 and others <= 2 and c2 == 0)
                or (c1 <= 1 and others == 0 and c2 <= 1)):
            return "hard"
        return "extra"

