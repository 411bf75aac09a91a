"""CI sessions (run by .ci/run through ci/nox.sh; locally: ``pip install nox && nox``).

    nox                       every session below (ci/lanes.sh: two at a time)
    nox -s tests              the README's test command on every Python 3.10-3.13 found
    nox -s tests-3.12         ... on one of them
    nox -s dist               sdist and wheel built as a user's pip builds them; the wheel
                              tested in a fresh venv without Cython, from the sdist's tests
    nox -s bench_smoke        every benchmark client completes every mode (figures not judged)
    nox -s devmode            the session and drop-in suites under PYTHONDEVMODE, ResourceWarning an error

Each session builds in a private copy of the source tree (.nox/SESSION/tmp/src), so
ci/lanes.sh can run two sessions at a time on CI's two cores.

A Python that is not installed is skipped with a note in nox's summary, never an error;
one whose runtime dependencies cannot be installed is skipped with pip's reason. Nox never
downloads an interpreter: it uses what is on PATH and what pyenv has installed.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import nox
from nox.command import CommandFailed

ROOT = Path(__file__).resolve().parent
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

# Listed in this order so ci/lanes.sh (sessions alternate between two lanes) balances
# them: tests-3.10, 3.12, dist, bench_smoke | tests-3.11, 3.13, devmode.
nox.options.sessions = ["tests", "dist", "devmode", "bench_smoke"]
nox.options.default_venv_backend = "venv"
nox.options.download_python = "never"
# nox turns a missing interpreter into an error when CI is set; here it is a skip
# ("Python interpreter 3.x not found" in the summary).
nox.options.error_on_missing_interpreters = False

PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
RUNTIME_DEPS = PYPROJECT["project"]["dependencies"]
TEST_DEPS = PYPROJECT["project"]["optional-dependencies"]["test"]


def _add_pyenv_pythons() -> None:
    """pyenv's shims only answer for the active version, so put the newest installed
    patch release of each wanted minor version on PATH (nox then finds python3.X)."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = []
    for minor in PYTHONS:
        dirs = [d for d in glob.glob(os.path.join(root, "versions", f"{minor}.*", "bin"))
                if os.path.exists(os.path.join(d, f"python{minor}"))]
        if dirs:
            found.append(max(dirs, key=lambda d: [int(x) for x in Path(d).parent.name.split(".") if x.isdigit()]))
    if found:
        os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])


_add_pyenv_pythons()


def _source_copy(session: nox.Session) -> Path:
    """A private copy of the source tree (what git tracks, plus new files it does not
    ignore) in the session's folder: every build writes its generated C and objects
    there, so sessions can run side by side (ci/lanes.sh) without racing on the tree."""
    dest = Path(session.create_tmp()).resolve() / "src"
    shutil.rmtree(dest, ignore_errors=True)
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, check=True).stdout.decode().split("\0")
        files = [f for f in listed if f and (ROOT / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".nox", "build", "dist", "__pycache__"}
        files = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()
                 and not skip & set(p.relative_to(ROOT).parts) and not p.relative_to(ROOT).parts[0].startswith(".venv")
                 and p.suffix not in (".so", ".pyc") and not (p.parent.name == "drbfast" and p.suffix == ".c")]
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dest / f)
    session.chdir(dest)
    return dest


def _install_runtime_or_skip(session: nox.Session) -> None:
    """Install the third-party dependencies alone first: if one of them (picows,
    pysimdjson, cryptography, ...) has no build for this Python, skip with pip's reason
    instead of failing; a failure to build drbfast itself later is a real failure."""
    try:
        session.install(*RUNTIME_DEPS, *TEST_DEPS, silent=True)
    except CommandFailed as exc:
        session.skip(f"Python {session.python}: the dependencies do not install ({exc.reason}); "
                     "pip's output is above")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """README: pip install -e ".[test]" && python -m pytest"""
    _install_runtime_or_skip(session)
    _source_copy(session)
    session.install("-e", ".[test]")
    # Fail loudly if the hot path did not compile: drbfast refuses to import without it.
    session.run("python", "-c", "import sys, drbfast, drbfast._book, drbfast._classify, drbfast._listener; "
                "print(sys.version.split()[0], 'compiled hot path:', drbfast._listener.__file__)")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def dist(session: nox.Session) -> None:
    """The sdist and the wheel, as pip builds them for a user.

    ``python -m build`` makes the sdist, unpacks it and builds the wheel from the unpacked
    tree in a fresh isolated venv, so a file the build needs but the sdist lacks fails
    here. ci/check_sdist.py then lists what the sdist must hold. The wheel is installed
    in a fresh venv without Cython and the sdist's own tests run against it from a
    directory where ``import drbfast`` can only resolve to site-packages.
    """
    tmp = Path(session.create_tmp()).resolve()
    out = tmp / "dist"
    shutil.rmtree(out, ignore_errors=True)
    session.install("build", "pytest", silent=True)
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "ci" / "tests"))
    _source_copy(session)
    session.run("python", "-m", "build", "--outdir", str(out), ".")
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        session.error(f"expected one sdist and one wheel in {out}, got {sdists + wheels}")
    session.run("python", str(ROOT / "ci" / "check_sdist.py"), str(sdists[0]))

    # The tests, as shipped in the sdist, in a directory holding no drbfast package.
    work = tmp / "wheel-test"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    with tarfile.open(sdists[0]) as tar:
        top = tar.getnames()[0].split("/")[0]
        members = [m for m in tar.getmembers() if m.name.startswith((f"{top}/tests/", f"{top}/pyproject.toml"))]
        tar.extractall(work, members=members, **({"filter": "data"} if sys.version_info >= (3, 12) else {}))
    for name in ("tests", "pyproject.toml"):
        shutil.move(str(work / top / name), str(work / name))
    shutil.rmtree(work / top)

    venv = tmp / "wheel-venv"
    shutil.rmtree(venv, ignore_errors=True)
    session.run("python", "-m", "venv", str(venv))
    py = str(venv / "bin" / "python")
    session.run(py, "-m", "pip", "install", "--quiet", f"{wheels[0]}[test]", external=True)
    session.chdir(work)
    # One process: prove where drbfast comes from and that no Cython is around, then
    # run pytest on the sdist's tests in that same interpreter.
    session.run(py, "-c", _WHEEL_TEST.format(wheel_tests=WHEEL_TESTS), *session.posargs, external=True)


_WHEEL_TEST = """
WHEEL_TESTS = {wheel_tests!r}
import importlib.util, os, sys, sysconfig
import drbfast, drbfast._listener
print("drbfast.__file__ =", drbfast.__file__)
print("compiled listener =", drbfast._listener.__file__)
site = os.path.realpath(sysconfig.get_paths()["purelib"])
assert os.path.realpath(drbfast.__file__).startswith(site + os.sep), "drbfast is not the installed wheel"
assert importlib.util.find_spec("Cython") is None, "Cython is installed in the wheel's venv"
print("Cython: not installed (the wheel needs no build tools)")
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *(sys.argv[1:] or WHEEL_TESTS)]))
"""

#: What the installed wheel is tested with: everything that touches the compiled
#: modules, the command and the public APIs. The whole suite already ran from the
#: checkout on every Python (tests-3.x); this keeps CI within its time.
WHEEL_TESTS = ["tests/test_classify_lanes.py", "tests/test_listener.py", "tests/test_listener_lanes.py",
               "tests/test_book.py", "tests/test_alloc.py", "tests/test_typing.py", "tests/test_client.py",
               "tests/test_client_book.py", "tests/test_orders.py", "tests/test_websockets.py", "tests/test_cli.py",
               "tests/test_emulator_server.py"]


@nox.session
def bench_smoke(session: nox.Session) -> None:
    """The C server and client compile, and every benchmark client completes every
    mode against them (CI does not judge the figures)."""
    _source_copy(session)
    session.install("-e", ".[test,bench]", silent=True)
    session.run("drbfast", "bench", "--quick")


@nox.session(python="3.11")
def devmode(session: nox.Session) -> None:
    """ci/devmode.sh: no leaked socket, task or unretrieved exception in the session and
    drop-in suites (tests/conftest.py fails a test whose loop exception handler fired)."""
    _install_runtime_or_skip(session)
    _source_copy(session)
    session.install("-e", ".[test]", silent=True)
    session.run("bash", "ci/devmode.sh", external=True)
