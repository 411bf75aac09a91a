"""ci/check_sdist.py on real tarballs: a complete sdist passes, a missing source or test
sample and a shipped build product each fail with their name."""

from __future__ import annotations

import importlib.util
import io
import sys
import tarfile
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("check_sdist", Path(__file__).resolve().parents[1] / "check_sdist.py")
assert spec is not None and spec.loader is not None
check_sdist = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_sdist)

COMPLETE = [
    "setup.py", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in",
    "drbfast/__init__.py", "drbfast/py.typed",
    "drbfast/_classify.pyx", "drbfast/_classify.pxd", "drbfast/_classify.pyi",
    "drbfast/_listener.pyx", "drbfast/_listener.pyi",
    "bench/c/server.c", "bench/c/client.c", "bench/c/wsbench.h",
    "tests/conftest.py", "tests/test_x.py", "tests/samples/a.json",
]


def make_sdist(tmp_path: Path, files: list[str]) -> Path:
    path = tmp_path / "drbfast-0.1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in files:
            data = b"x"
            info = tarfile.TarInfo(f"drbfast-0.1.0/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_complete_sdist_passes(tmp_path: Path) -> None:
    files = check_sdist.sdist_files(make_sdist(tmp_path, COMPLETE))
    assert check_sdist.problems(files, tracked=COMPLETE) == []


@pytest.mark.parametrize("missing", ["drbfast/_listener.pyx", "drbfast/_classify.pxd", "drbfast/py.typed",
                                     "bench/c/wsbench.h", "tests/samples/a.json"])
def test_a_missing_file_is_named(tmp_path: Path, missing: str) -> None:
    files = check_sdist.sdist_files(make_sdist(tmp_path, [f for f in COMPLETE if f != missing]))
    bad = check_sdist.problems(files, tracked=COMPLETE)
    assert bad and all(missing in line or missing.rsplit("/", 1)[0] in line for line in bad)


def test_a_missing_tracked_file_is_named(tmp_path: Path) -> None:
    files = check_sdist.sdist_files(make_sdist(tmp_path, COMPLETE))
    assert check_sdist.problems(files, tracked=[*COMPLETE, "docs/TUNING.md"]) == ["missing: docs/TUNING.md (tracked by git)"]


@pytest.mark.parametrize("generated", ["drbfast/_listener.c", "drbfast/_classify.cpython-311-x86_64-linux-gnu.so",
                                       "drbfast/_build_info.py", "bench/build/server"])
def test_a_shipped_build_product_is_named(tmp_path: Path, generated: str) -> None:
    files = check_sdist.sdist_files(make_sdist(tmp_path, [*COMPLETE, generated]))
    assert check_sdist.problems(files, tracked=COMPLETE) == [f"generated file shipped: {generated}"]


def test_main_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = make_sdist(tmp_path, COMPLETE[1:])
    assert check_sdist.main([str(bad)]) == 1
    assert "missing: setup.py" in capsys.readouterr().err
    assert check_sdist.main([]) == 2


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
