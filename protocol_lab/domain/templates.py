"""Notification templates: ``{field}`` replaced by the field's value, and nothing more.

A placeholder is a plain field name in braces (``{title}``, ``{ticket_id}``: a letter or ``_``,
then letters, digits or ``_``); ``{{`` and ``}}`` are literal braces. Format specs, conversions,
attribute and index access (``{title:>99}``, ``{title!r}``, ``{title.x}``, ``{0}``) are not
placeholders: :func:`validate_template` refuses them when a rule is saved, and
:func:`render_template` copies them verbatim (a template stored before the check). A field
without a value stays as written. The rendered text is cut at :data:`MAX_RENDERED_CHARS`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from protocol_lab.domain.errors import RuleError

__all__ = [
    "MAX_RENDERED_CHARS",
    "MAX_TEMPLATE_CHARS",
    "TemplateError",
    "render_template",
    "validate_template",
]

MAX_TEMPLATE_CHARS: Final = 4000
MAX_RENDERED_CHARS: Final = 10_000
_ELLIPSIS: Final = "…"
# Literal braces, a brace group (a placeholder or not), or a lone brace.
_TOKEN: Final = re.compile(r"\{\{|\}\}|\{[^{}]*\}|[{}]")
_FIELD: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TemplateError(RuleError):
    """A template with a placeholder other than ``{field}``, or too long."""


def _problem(token: str) -> str | None:
    if token in ("{{", "}}") or _FIELD.fullmatch(token):
        return None
    if token in ("{", "}"):
        return f"unmatched {token!r}: write {token * 2!r} for a literal brace"
    return (
        f"placeholder {token!r} is not allowed: use {{field}} with a plain field name "
        "(letters, digits, _), no format spec, conversion, attribute or index"
    )


def validate_template(template: str) -> None:
    """Raise :class:`TemplateError` naming the first bad placeholder, or if it is too long."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"template longer than {MAX_TEMPLATE_CHARS} characters")
    for match in _TOKEN.finditer(template):
        problem = _problem(match.group())
        if problem is not None:
            raise TemplateError(problem)


def _substitute(token: str, values: Mapping[str, Any]) -> str:
    if token == "{{":
        return "{"
    if token == "}}":
        return "}"
    field = _FIELD.fullmatch(token)
    if field is None or values.get(field.group(1)) is None:
        return token
    return str(values[field.group(1)])


def render_template(
    template: str, values: Mapping[str, Any], *, limit: int = MAX_RENDERED_CHARS
) -> str:
    """``template`` with each ``{field}`` replaced by ``values[field]``, at most ``limit`` chars.

    Text past the limit is dropped and the result ends with ``…``.
    """
    pieces: list[str] = []
    size = 0
    position = 0

    def add(text: str) -> bool:
        # Keeps at most one character past the limit: enough to know the text was cut.
        nonlocal size
        pieces.append(text[: limit + 1 - size])
        size += len(pieces[-1])
        return size <= limit

    for match in _TOKEN.finditer(template):
        literal = template[position : match.start()]
        position = match.end()
        if not add(literal) or not add(_substitute(match.group(), values)):
            break
    else:
        add(template[position:])
    rendered = "".join(pieces)
    if len(rendered) > limit:
        return rendered[: max(limit - len(_ELLIPSIS), 0)] + _ELLIPSIS[:limit]
    return rendered
