"""Check that an sdist holds everything needed to build, test and benchmark drbfast, and
nothing the build writes.

    python ci/check_sdist.py dist/drbfast-X.tar.gz

Required: every file git tracks (when run in a git checkout) except the CI machinery, and
in any case the patterns below. Forbidden: compiled objects and generated sources.
"""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What the build and the tests need, whether or not git is at hand.
REQUIRED = [
    "setup.py", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in",
    "drbfast/__init__.py", "drbfast/py.typed",
    "drbfast/_classify.pyx", "drbfast/_classify.pxd", "drbfast/_classify.pyi",
    "drbfast/_listener.pyx", "drbfast/_listener.pyi",
    "bench/c/*.c", "bench/c/*.h",
    "tests/conftest.py", "tests/test_*.py", "tests/samples/*",
]
# Tracked but not part of the package's source distribution.
NOT_SHIPPED = [".ci/*", "ci/*", ".gitignore", "noxfile.py"]
# Written by a build; shipping them would hide a missing source or ship a stale one.
FORBIDDEN = ["*.so", "*.pyc", "*/__pycache__/*", "drbfast/_classify.c", "drbfast/_listener.c",
             "drbfast/_build_info.py", "bench/build/*"]


def sdist_files(path: Path) -> set[str]:
    with tarfile.open(path) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    # strip the "drbfast-X.Y.Z/" top directory
    return {n.split("/", 1)[1] for n in names if "/" in n}


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        print("check_sdist: not a git checkout; checking the required patterns only")
        return []
    return [f for f in out.splitlines() if not any(fnmatch.fnmatch(f, p) for p in NOT_SHIPPED)]


def problems(files: set[str], tracked: list[str]) -> list[str]:
    out = [f"missing: {p} (nothing matches)" for p in REQUIRED if not fnmatch.filter(files, p)]
    out += [f"missing: {f} (tracked by git)" for f in tracked if f not in files]
    out += [f"generated file shipped: {f}" for f in sorted(files) if any(fnmatch.fnmatch(f, p) for p in FORBIDDEN)]
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[0])
    files = sdist_files(path)
    bad = problems(files, tracked_files())
    for line in bad:
        print(f"check_sdist: {path.name}: {line}", file=sys.stderr)
    if bad:
        return 1
    by_kind = {k: len(fnmatch.filter(files, p)) for k, p in
               [(".pyx", "*.pyx"), (".pxd", "*.pxd"), (".pyi", "*.pyi"), ("bench C", "bench/c/*"), ("samples", "tests/samples/*")]}
    print(f"check_sdist: {path.name}: {len(files)} files, complete ({', '.join(f'{v} {k}' for k, v in by_kind.items())})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
