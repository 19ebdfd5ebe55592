"""`runtime` and `actors` are generic import names: make sure the imported ones are ours."""

from __future__ import annotations

from pathlib import Path

import actors
import runtime

REPO = Path(__file__).resolve().parent.parent


def test_imported_runtime_is_this_checkout() -> None:
    assert runtime.__file__ is not None
    assert Path(runtime.__file__).resolve().parent == REPO / "runtime"


def test_imported_actors_is_this_checkout() -> None:
    assert actors.__file__ is not None
    assert Path(actors.__file__).resolve().parent == REPO / "actors"


def test_tests_are_not_a_package() -> None:
    assert not (REPO / "tests" / "__init__.py").exists()
    assert not (REPO / "bench" / "__init__.py").exists()


def test_every_package_directory_is_in_the_distribution() -> None:
    """A module folder missing from ``[tool.setuptools] packages`` works in a checkout
    (and an editable install) but is absent from a wheel: ``import`` fails for users."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.parent.relative_to(REPO).parts)
        for top in ("runtime", "actors")
        for path in (REPO / top).rglob("*")
        if path.is_file()
        and path.suffix in {".py", ".html", ".js", ".css"}
        and "__pycache__" not in path.parts
    }
    assert found == listed
