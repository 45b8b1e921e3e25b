"""The dependency direction of docs/architecture.md, read from the library's own source."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import protocol_lab

PACKAGE = Path(protocol_lab.__file__).parent
# the command-line entry points start the service's processes, so they may import it
STARTS_SERVICE = {"cli.py", "demo.py"}


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        yield name, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    return []


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _module_level_imports(tree: ast.Module) -> list[str]:
    """Imports run when the module is imported: not inside functions or ``TYPE_CHECKING``."""
    found: list[str] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            found.extend(_imported(node))
            if isinstance(node, ast.If):
                guarded = isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                if not guarded:
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.With | ast.ClassDef):
                visit(node.body)

    visit(tree.body)
    return found


def test_only_the_entry_points_import_the_service() -> None:
    importers = {
        name
        for name, tree in _modules()
        if any(_top(m) == "service" for node in ast.walk(tree) for m in _imported(node))
    }
    assert importers == STARTS_SERVICE


def test_the_entry_points_import_the_service_only_when_they_start_it() -> None:
    for name, tree in _modules():
        if name in STARTS_SERVICE:
            assert not [m for m in _module_level_imports(tree) if _top(m) == "service"], name


def test_the_domain_needs_no_framework_at_import_time() -> None:
    for name, tree in _modules():
        if name.startswith("domain/"):
            heavy = {_top(m) for m in _module_level_imports(tree)} & {"fastapi", "temporalio"}
            assert not heavy, name
