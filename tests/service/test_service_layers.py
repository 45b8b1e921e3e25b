"""The service's layering, read from its own source: only the API's modules (and the app that
assembles them) import from ``service.api``; the layers below the routes never do."""

from __future__ import annotations

import ast
from pathlib import Path

import service

PACKAGE = Path(service.__file__).parent
# the HTTP layer itself, and the app factory that mounts its routers
API_SIDE = ("api/", "app.py")


def _imports_of(tree: ast.Module) -> list[str]:
    """Every module an import statement names, anywhere in the module (functions included)."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
            # ``from service import api`` names the package through its alias
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _reaches_api(name: str) -> bool:
    return name == "service.api" or name.startswith("service.api.")


def test_no_module_below_the_routes_imports_the_api() -> None:
    below = [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if not path.relative_to(PACKAGE).as_posix().startswith(API_SIDE)
    ]
    assert len(below) > 50, "the walk found the service's modules"
    offenders: dict[str, list[str]] = {}
    for path in below:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        reached = sorted(filter(_reaches_api, _imports_of(tree)))
        if reached:
            offenders[path.relative_to(PACKAGE).as_posix()] = reached
    assert offenders == {}


def test_the_check_sees_an_import_of_the_api() -> None:
    tree = ast.parse(
        "def f():\n    from service.api.errors import ApiError\n"
        "from service import api\nimport service.api.deps\n"
    )
    assert sorted(filter(_reaches_api, _imports_of(tree))) == [
        "service.api",
        "service.api.deps",
        "service.api.errors",
        "service.api.errors.ApiError",
    ]
