"""Typing stub for the compiled byte classifier (drbfast/_classify.pyx)."""




from .kinds import Kind

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
