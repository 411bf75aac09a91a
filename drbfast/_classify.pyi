"""Typing stub for the compiled byte classifier (drbfast/_classify.pyx)."""




from .kinds import Kind, Lane

def classify(payload: bytes | bytearray | memoryview) -> Kind:
    """Sort one complete message with the fast matcher. Returns ``Kind.UNKNOWN`` when
    it defers (nesting deeper than 256, integers longer than 4300 digits); otherwise the
    answer equals :func:`drbfast.oracle.classify_reference`."""

def classify_exact(payload: bytes) -> Kind:
    """The fast matcher, then the oracle for UNKNOWN: never UNKNOWN."""

def classify_detail(payload: bytes) -> tuple[Kind, bool, int]:
    """``(kind, is_error, seq)``; ``is_error`` and ``seq`` (or -1) describe an engine reply."""

def bench_classify(payload: bytes, n: int) -> float:
    """Mean nanoseconds per classification, timed around a C loop of ``n`` calls."""

def classify_lane(payload: bytes) -> tuple[Kind, Lane, str | None]:
    """``(kind, lane, channel)`` from the fast matcher. ``lane`` is ``Lane.UNKNOWN``
    unless ``kind`` is OTHER and the message starts with one of Deribit's production
    layouts (a numeric-id reply; a notification that starts ``{"jsonrpc":"2.0","method":
    "subscription","params":{"channel":"`` with a plain-ASCII channel), which decide by
    their first bytes (the oracle's rule 0); otherwise it equals
    :func:`drbfast.oracle.lane_reference`. ``channel`` is the channel (a slice of the
    message) or None."""

def lane_exact(payload: bytes) -> tuple[Lane, str]:
    """``(lane, channel)`` as the listener decides it: the fast matcher, then the oracle
    when it could not decide. Never UNKNOWN; channel "" when there is none."""
