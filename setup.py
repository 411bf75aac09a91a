"""Build the compiled hot path (drbfast._classify, drbfast._listener, drbfast._book, drbfast._kinds) with Cython.

Switches (environment): DRBFAST_ANNOTATE=1 writes Cython's HTML annotation next to each
.pyx; DRBFAST_DEBUG=1 builds with -O0 -g and Cython's bounds checks on.
"""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

import picows

DEBUG = os.environ.get("DRBFAST_DEBUG") == "1"

# One set of directives for every module. The hot modules also turn bounds and
# wrap-around checks off in their own headers.
DIRECTIVES = {
    "language_level": 3,
    "embedsignature": True,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "cdivision": True,
    "initializedcheck": DEBUG,
}

CFLAGS = ["-O0", "-g"] if DEBUG else ["-O3"]

# The listener's cdef class subclasses picows.WSListener, so it is compiled against the
# installed picows' .pxd. pyproject pins picows to one minor series for that reason.
PICOWS_DIR = os.path.dirname(picows.__file__)

# Record which picows the extension was compiled against; drbfast/__init__.py refuses
# to import against another minor series (a changed .pxd layout would crash, not fail).
with open(os.path.join("drbfast", "_build_info.py"), "w") as f:
    f.write("# Written by setup.py at build time.\n")
    f.write(f"PICOWS_BUILD_VERSION = {picows.__version__!r}\n")

extensions = [
    # The Python enums over _classify.pxd's C enums (drbfast.kinds re-exports them).
    Extension("drbfast._kinds", ["drbfast/_kinds.pyx"], extra_compile_args=CFLAGS),
    Extension("drbfast._classify", ["drbfast/_classify.pyx"], extra_compile_args=CFLAGS),
    Extension("drbfast._book", ["drbfast/_book.pyx"], extra_compile_args=CFLAGS),
    Extension(
        "drbfast._listener",
        ["drbfast/_listener.pyx"],
        include_dirs=[PICOWS_DIR],
        extra_compile_args=CFLAGS,
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        annotate=os.environ.get("DRBFAST_ANNOTATE") == "1",
        include_path=[os.path.dirname(PICOWS_DIR)],
    ),
)
