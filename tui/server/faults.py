"""Injected faults for testing clients: dropped connections, 429s, 500s and latency."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

_LATENCY = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)?$")


class FaultSpecError(ValueError):
    """A ``--faults`` string that cannot be parsed."""


@dataclass
class FaultPlan:
    """Probabilities of each fault per request, fixed latency, and a seedable RNG."""

    drop: float = 0.0
    """Chance of closing the connection without any response."""
    rate_limit: float = 0.0
    """Chance of a 429 with ``retry-after-ms``."""
    server_error: float = 0.0
    """Chance of a 500 ``server_error``."""
    latency_s: float = 0.0
    """Delay added before every response."""
    seed: int | None = None
    """Seed for reproducible fault sequences."""
    retry_after_ms: int = 20
    """What the injected 429s tell clients to wait."""

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self.injected: dict[str, int] = {"drop": 0, "429": 0, "500": 0}
        """How many of each fault were injected so far."""

    @property
    def active(self) -> bool:
        """Whether any fault is configured."""
        return bool(self.drop or self.rate_limit or self.server_error or self.latency_s)

    def draw(self) -> str | None:
        """The fault for the next request: ``"drop"``, ``"429"``, ``"500"`` or None."""
        if not (self.drop or self.rate_limit or self.server_error):
            return None
        roll = self._rng.random()
        for name, chance in (("drop", self.drop), ("429", self.rate_limit),
                             ("500", self.server_error)):
            if roll < chance:
                self.injected[name] += 1
                return name
            roll -= chance
        return None


def parse_faults(spec: str) -> FaultPlan:
    """Parse ``"drop=0.1,429=0.05,500=0.05,latency=50ms,seed=7"`` (any subset, any order)."""
    plan = FaultPlan()
    values: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in (spec or "").split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise FaultSpecError(f"fault {item!r} needs a value, e.g. drop=0.1")
        values[name.strip().lower()] = value.strip()
    chances = {"drop": "drop", "429": "rate_limit", "500": "server_error"}
    for name, value in values.items():
        if name in chances:
            try:
                chance = float(value)
            except ValueError:
                raise FaultSpecError(f"{name} must be a probability, got {value!r}") from None
            if not 0.0 <= chance <= 1.0:
                raise FaultSpecError(f"{name} must be between 0 and 1, got {value}")
            setattr(plan, chances[name], chance)
        elif name == "latency":
            match = _LATENCY.match(value)
            if not match:
                raise FaultSpecError(f"latency must look like 50ms or 0.2s, got {value!r}")
            amount = float(match.group(1))
            plan.latency_s = amount / 1000 if match.group(2) in (None, "ms") else amount
        elif name == "seed":
            try:
                plan.seed = int(value)
            except ValueError:
                raise FaultSpecError(f"seed must be an integer, got {value!r}") from None
        elif name == "retry_after_ms":
            plan.retry_after_ms = int(value)
        else:
            raise FaultSpecError(f"unknown fault {name!r}; known: drop, 429, 500, latency, seed")
    if plan.drop + plan.rate_limit + plan.server_error > 1.0:
        raise FaultSpecError("fault probabilities add up to more than 1")
    plan.__post_init__()
    return plan
