"""No function of the library or the service is longer than 80 lines (issue 16 item 8) unless
its docstring says why, in a sentence that starts "Long because".

A function's length runs from its ``def`` line (decorators not counted) to its last line,
docstring and nested functions included; a nested function is also measured on its own.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("protocol_lab", "service")
MAX_LINES = 80
REASON = re.compile(r"(?:^|[.!?:]\s+|\n\s*)Long because\b")


def _functions(path: Path) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function and method in the module at ``path``, nested ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _length(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from ``def`` to the function's last line."""
    assert function.end_lineno is not None
    return function.end_lineno - function.lineno + 1


def _gives_reason(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether the docstring has a sentence starting "Long because"."""
    return REASON.search(ast.get_docstring(function) or "") is not None


def _too_long() -> list[str]:
    """``path:line name (n lines)`` of every function over the limit without a reason."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for function in _functions(path):
                if _length(function) > MAX_LINES and not _gives_reason(function):
                    where = path.relative_to(ROOT)
                    found.append(
                        f"{where}:{function.lineno} {function.name} ({_length(function)} lines)"
                    )
    return found


def test_no_function_is_long_without_a_reason() -> None:
    too_long = _too_long()
    assert not too_long, (
        f"functions over {MAX_LINES} lines: split them into named steps, or say why in a "
        'docstring sentence starting "Long because":\n' + "\n".join(too_long)
    )


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("def f():\n" + "    x = 1\n" * 80, True),
        ("def f():\n" + "    x = 1\n" * 79, False),
        ('def f():\n    """Long because it must be."""\n' + "    x = 1\n" * 90, False),
        (
            'def f():\n    """Does things.\n\n    Long because one place.\n    """\n'
            + "    x = 1\n" * 90,
            False,
        ),
        ('def f():\n    """Not long because of anything."""\n' + "    x = 1\n" * 90, True),
        ("class C:\n    async def m(self):\n" + "        x = 1\n" * 80, True),
    ],
)
def test_the_rule_measures_from_def_to_last_line(
    tmp_path: Path, source: str, flagged: bool
) -> None:
    module = tmp_path / "module.py"
    module.write_text(source)
    (function,) = _functions(module)
    assert (_length(function) > MAX_LINES and not _gives_reason(function)) is flagged
