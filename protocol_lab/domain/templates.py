"""Rule templates: placeholders replaced by the ticket's (or the rule's) values, and nothing more.

Two placeholder forms, for notification messages and subjects and for free-text field values:

- ``{{ticket.title}}``, ``{{ ticket.priority }}``: a name from :data:`PLACEHOLDERS` in double
  braces (spaces inside allowed): ``ticket.<field>`` for every ticket field, ``rule.id`` and
  ``rule.name``;
- ``{title}``, ``{ticket_id}``: the short form, a ticket field name in single braces.

A name that is not known is refused when a rule is saved (:func:`validate_template` names it),
and so are format specs, conversions, attribute and index access (``{title:>99}``,
``{title!r}``, ``{title[0]}``, ``{0}``) and lone braces. ``}}`` outside a placeholder, and
``{{`` not opening one, are literal braces. :func:`render_template` copies anything it does not
substitute verbatim (a template stored before these checks), a placeholder without a value
included. The rendered text is cut at :data:`MAX_RENDERED_CHARS`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from protocol_lab.domain.errors import RuleError
from protocol_lab.domain.tickets import TICKET_FIELDS

__all__ = [
    "MAX_RENDERED_CHARS",
    "MAX_TEMPLATE_CHARS",
    "PLACEHOLDERS",
    "SHORT_PLACEHOLDERS",
    "TemplateError",
    "has_placeholders",
    "render_template",
    "template_values",
    "validate_template",
]

MAX_TEMPLATE_CHARS: Final = 4000
MAX_RENDERED_CHARS: Final = 10_000
_ELLIPSIS: Final = "…"

#: The names a ``{{...}}`` placeholder may use.
PLACEHOLDERS: Final = frozenset(
    {f"ticket.{name}" for name in TICKET_FIELDS} | {"rule.id", "rule.name"}
)
#: The names a short ``{...}`` placeholder may use.
SHORT_PLACEHOLDERS: Final = frozenset(TICKET_FIELDS | {"ticket_id"})

# A double-brace group, literal double braces, a single-brace group, or a lone brace.
_TOKEN: Final = re.compile(r"\{\{[^{}]*\}\}|\{\{|\}\}|\{[^{}]*\}|[{}]")
_LONG: Final = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")
_SHORT: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TemplateError(RuleError):
    """A template with an unknown or malformed placeholder, or too long."""


def _name(token: str) -> str | None:
    """The full name a placeholder token refers to (``{title}`` is ``ticket.title``,
    ``{ticket_id}`` is ``ticket.id``), or None if the token is not a placeholder."""
    long = _LONG.fullmatch(token)
    if long is not None:
        return long.group(1)
    short = _SHORT.fullmatch(token)
    if short is None:
        return None
    return "ticket.id" if short.group(1) == "ticket_id" else f"ticket.{short.group(1)}"


def _problem(token: str) -> str | None:
    if token in ("{{", "}}"):
        return None
    if token in ("{", "}"):
        return f"unmatched {token!r}: write {token * 2!r} for a literal brace"
    long = _LONG.fullmatch(token)
    if long is not None:
        if long.group(1) in PLACEHOLDERS:
            return None
        return (
            f"unknown placeholder {token!r}: use ticket.<field> "
            f"({', '.join(sorted(TICKET_FIELDS))}), rule.id or rule.name"
        )
    short = _SHORT.fullmatch(token)
    if short is not None:
        if short.group(1) in SHORT_PLACEHOLDERS:
            return None
        return f"unknown placeholder {token!r}: use one of {sorted(SHORT_PLACEHOLDERS)}"
    return (
        f"placeholder {token!r} is not allowed: use {{{{ticket.<field>}}}} or {{field}} with a "
        "plain name, no format spec, conversion, attribute or index"
    )


def validate_template(template: str) -> None:
    """Raise :class:`TemplateError` naming the first bad placeholder, or if it is too long."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"template longer than {MAX_TEMPLATE_CHARS} characters")
    for match in _TOKEN.finditer(template):
        problem = _problem(match.group())
        if problem is not None:
            raise TemplateError(problem)


def has_placeholders(template: str) -> bool:
    """Whether the text has any placeholder (known or not) that rendering may replace."""
    return any(_name(m.group()) is not None for m in _TOKEN.finditer(template))


def template_values(
    ticket: Mapping[str, Any] | None, *, rule_id: str | None = None, rule_name: str | None = None
) -> dict[str, Any]:
    """The values placeholders take, by full name, for a ticket (as the API shows it) and a
    rule."""
    values: dict[str, Any] = {f"ticket.{name}": value for name, value in (ticket or {}).items()}
    values["rule.id"] = rule_id
    values["rule.name"] = rule_name
    return values


def _substitute(token: str, values: Mapping[str, Any]) -> str:
    if token == "{{":
        return "{"
    if token == "}}":
        return "}"
    name = _name(token)
    if name is None or values.get(name) is None:
        return token
    return str(values[name])


def render_template(
    template: str, values: Mapping[str, Any], *, limit: int = MAX_RENDERED_CHARS
) -> str:
    """``template`` with each placeholder replaced by ``values[name]``, at most ``limit`` chars.

    ``values`` maps full placeholder names (``ticket.title``, ``rule.name``) to values, as
    :func:`template_values` builds them. Text past the limit is dropped and the result ends
    with ``…``.
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
