"""Reconnect delays: exponential with full jitter and a cap, reset after a success."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass
class Backoff:
    """``next()`` gives the next delay in seconds: a random value in
    ``[initial * factor**n / 2, initial * factor**n]``, capped at ``cap``."""

    initial: float = 0.25
    factor: float = 2.0
    cap: float = 30.0
    attempts: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def next(self) -> float:
        ceiling = min(self.cap, self.initial * self.factor ** self.attempts)
        self.attempts += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Call after a successful (re)connect."""
        self.attempts = 0
