"""How fast jobs run: ``demo`` paces a ~150-example job to about a minute, ``max`` never sleeps."""

from __future__ import annotations

from dataclasses import dataclass

DEMO_STEP_S = 0.1
"""Seconds per step at demo speed (450 steps of a 150-example, 3-epoch job: about 45 s)."""
DEMO_TRAINING_CAP_S = 60.0
"""Longer jobs take smaller steps at demo speed so their training still ends in about this long."""
DEMO_PHASE_S = 1.5
"""Seconds spent in validating_files and in queued at demo speed."""


class SpeedError(ValueError):
    """A ``--speed`` value that is neither demo, max nor a positive number."""


@dataclass(frozen=True)
class Pace:
    """A speed factor over demo pacing; ``None`` means as fast as possible."""

    factor: float | None
    """1.0 is demo speed, 4.0 four times faster; None is ``max``."""

    @classmethod
    def parse(cls, speed: str | float) -> Pace:
        """``"demo"``, ``"max"`` or a positive factor such as ``"4"``."""
        text = str(speed).strip().lower()
        if text == "demo":
            return cls(1.0)
        if text == "max":
            return cls(None)
        try:
            factor = float(text.rstrip("x"))
        except ValueError:
            raise SpeedError(f"speed must be demo, max or a positive number, got {speed!r}") \
                from None
        if not factor > 0:
            raise SpeedError(f"speed must be positive, got {speed!r}")
        return cls(factor)

    @property
    def label(self) -> str:
        """Human description for the server banner."""
        return "max" if self.factor is None else ("demo" if self.factor == 1 else f"{self.factor}x")

    def phase_delay(self) -> float:
        """Seconds a job stays in validating_files and in queued."""
        return 0.0 if self.factor is None else DEMO_PHASE_S / self.factor

    def step_delay(self, total_steps: int) -> float:
        """Wall time one step should take (compute included)."""
        if self.factor is None:
            return 0.0
        per_step = min(DEMO_STEP_S, DEMO_TRAINING_CAP_S / max(1, total_steps))
        return per_step / self.factor
