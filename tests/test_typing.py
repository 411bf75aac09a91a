"""The public API is typed: the compiled modules' stubs match them, and the package
passes ``mypy --strict``."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import drbfast
from drbfast import _book, _classify, _listener

PKG = Path(drbfast.__file__).parent


def stub_names(stub: Path) -> dict[str, set[str]]:
    """Top-level names of a stub, and the members of each class in it."""
    tree = ast.parse(stub.read_text())
    out: dict[str, set[str]] = {"": set()}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out[""].add(node.name)
        if isinstance(node, ast.ClassDef):
            out[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)} | {
                n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    return out


@pytest.mark.parametrize("module", [_book, _classify, _listener], ids=["_book", "_classify", "_listener"])
def test_stubs_match_the_compiled_modules(module: object) -> None:
    stub = PKG / f"{module.__name__.rsplit('.', 1)[1]}.pyi"  # type: ignore[attr-defined]
    names = stub_names(stub)
    for name in names[""]:
        assert hasattr(module, name), f"{stub.name} declares {name}, the module lacks it"
    for cls, members in names.items():
        if cls:
            obj = getattr(module, cls)
            for member in members:
                if member.startswith("__") and member != "__init__":
                    continue
                assert hasattr(obj, member) or member in getattr(obj, "__annotations__", {}), f"{cls}.{member}"
    # and every public runtime name is declared
    public = {n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))
              and getattr(getattr(module, n), "__module__", "") == module.__name__}  # type: ignore[attr-defined]
    assert public <= names[""], f"undeclared in {stub.name}: {public - names['']}"


def test_package_passes_mypy_strict() -> None:
    pytest.importorskip("mypy")
    # By package name, not by path: given a folder inside site-packages (an installed
    # wheel), mypy takes site-packages for the source root and stops on the
    # typing_extensions.py lying there ("shadows library module"). A source checkout is
    # searched from its root, an installed package through site-packages.
    installed = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    cwd = None if os.path.realpath(PKG.parent) in installed else PKG.parent
    res = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "-p", "drbfast"],
                         capture_output=True, text=True, timeout=300, cwd=cwd)
    assert res.returncode == 0, res.stdout + res.stderr
