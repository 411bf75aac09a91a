"""Import-time checks for the compiled hot path.

A latency product must not quietly run ten times slower, so there is no pure-Python
fallback: if the extension is missing, or was compiled against another picows series
(whose ``.pxd`` layout our ``cdef class`` depends on), importing drbfast fails and says
how to fix it.
"""

from __future__ import annotations

BUILD_HINT = (
    "build it from the source checkout with `pip install -e .` "
    "(or `python setup.py build_ext --inplace`); a C compiler and the Python headers are needed"
)


def _series(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def check_build() -> None:
    """Raise ImportError unless the compiled modules match the installed picows."""
    try:
        from . import _book, _build_info, _classify, _listener  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"drbfast's compiled hot path is not built ({exc}); {BUILD_HINT}"
        ) from exc
    import picows

    built = _build_info.PICOWS_BUILD_VERSION
    installed = str(getattr(picows, "__version__", "0.0"))
    if _series(built) != _series(installed):
        raise ImportError(
            f"drbfast was compiled against picows {built} but picows {installed} is "
            f"installed; their WSListener layouts differ. Rebuild: {BUILD_HINT}"
        )
