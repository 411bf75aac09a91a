"""Reconnect delays: exponential with full jitter and a cap, reset after a success."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass
class Backoff:
    """``next()`` gives the next delay in seconds: a random value in
    ``[c / 2, c]`` where ``c = min(cap, initial * factor**attempts)``.

    It never overflows: past the attempt where the exponential reaches ``cap`` every
    delay stays within ``[cap / 2, cap]``, however long an outage lasts."""

    initial: float = 0.25
    factor: float = 2.0
    cap: float = 30.0
    attempts: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if not (self.initial > 0 and self.factor >= 1.0 and self.cap >= self.initial):
            raise ValueError("Backoff needs initial > 0, factor >= 1 and cap >= initial")

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        try:
            value = self.initial * self.factor ** self.attempts
        except OverflowError:
            return self.cap
        return min(self.cap, value)

    def next(self) -> float:
        ceiling = self.ceiling()
        self.attempts += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Call after a successful (re)connect."""
        self.attempts = 0
