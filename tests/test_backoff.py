"""Reconnect delays grow, are jittered, capped, and reset after success."""

from __future__ import annotations

import random

from drbfast.backoff import Backoff


def test_growth_jitter_cap_reset() -> None:
    b = Backoff(initial=1.0, factor=2.0, cap=5.0, rng=random.Random(1))
    delays = [b.next() for _ in range(6)]
    ceilings = [1, 2, 4, 5, 5, 5]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings))
    assert len(set(delays)) == len(delays), "jittered"
    b.reset()
    assert b.next() <= 1.0


def test_long_outage_never_overflows() -> None:
    b = Backoff(rng=random.Random(2))
    delays = [b.next() for _ in range(10_000)]
    assert b.attempts == 10_000
    assert all(0 < d <= b.cap for d in delays)
    assert min(delays[-100:]) >= b.cap / 2


def test_bad_numbers_refused() -> None:
    import pytest
    with pytest.raises(ValueError):
        Backoff(initial=0)
    with pytest.raises(ValueError):
        Backoff(factor=0.5)
