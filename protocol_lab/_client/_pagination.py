"""Cursor pagination, written once as a sans-I/O flow that both client twins drive.

The API pages lists with ``limit`` (at most 100), ``starting_after`` and ``ending_before`` and
answers ``{"has_more": bool, "data": [...]}``. :func:`cursor_flow` yields :class:`Fetch` (get
the list with these query parameters; reply with the decoded page) and :class:`Emit` (hand
these items to the caller; reply with None) until the list is exhausted.

Forwards (the default, or from ``starting_after``) items come in list order and the next page
starts after the last item seen. Backwards (from ``ending_before``) each page holds the items
just before the cursor, in list order; they are emitted nearest-to-the-cursor first and the
next page ends before the first item of the current one, so iteration walks away from the
cursor, as in the Stripe client.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from protocol_lab._client._errors import ApiError

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Emit",
    "Fetch",
    "PaginationError",
    "check_page_size",
    "cursor_flow",
    "parse_page",
]

MAX_PAGE_SIZE: Final = 100
DEFAULT_PAGE_SIZE: Final = 100

JSONObject = dict[str, Any]


class PaginationError(ApiError):
    """A list response does not have the ``{"has_more", "data": [{"id", ...}]}`` shape."""


@dataclass(frozen=True)
class Fetch:
    """Instruction: GET the list with ``params``; reply with the decoded JSON page."""

    params: dict[str, Any]


@dataclass(frozen=True)
class Emit:
    """Instruction: yield ``items`` to the caller, in order; reply with None."""

    items: list[JSONObject]


def check_page_size(page_size: int) -> int:
    """``page_size`` if it is within 1..100, else ValueError."""
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise TypeError(f"page_size must be an int, not {type(page_size).__name__}")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be within 1..{MAX_PAGE_SIZE}, got {page_size}")
    return page_size


def parse_page(page: object) -> tuple[list[JSONObject], bool]:
    """The items and ``has_more`` of a decoded list response; PaginationError if malformed."""
    if not isinstance(page, dict):
        raise PaginationError(f"a list response must be an object, got {type(page).__name__}")
    data = page.get("data")
    has_more = page.get("has_more")
    if not isinstance(data, list) or not isinstance(has_more, bool):
        raise PaginationError("a list response needs 'data' (array) and 'has_more' (boolean)")
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise PaginationError("every item of a list response needs a string 'id'")
    return data, has_more


def cursor_flow(
    params: Mapping[str, Any] | None = None,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> Generator[Fetch | Emit, JSONObject | None, None]:
    """The pagination flow over a list whose filters are ``params``.

    Arguments are checked now (not at the first ``next``): ``page_size`` within 1..100 and at
    most one of ``starting_after`` / ``ending_before``.
    """
    check_page_size(page_size)
    if starting_after is not None and ending_before is not None:
        raise ValueError("give starting_after or ending_before, not both")
    filters = {k: v for k, v in (params or {}).items() if v is not None}
    return _flow(filters, page_size=page_size, after=starting_after, before=ending_before)


def _flow(
    filters: dict[str, Any],
    *,
    page_size: int,
    after: str | None,
    before: str | None,
) -> Generator[Fetch | Emit, JSONObject | None, None]:
    backward = before is not None
    cursor = before if backward else after
    while True:
        query = {**filters, "limit": page_size}
        if cursor is not None:
            query["ending_before" if backward else "starting_after"] = cursor
        page = yield Fetch(query)
        data, has_more = parse_page(page)
        if not data:
            return
        yield Emit(data[::-1] if backward else list(data))
        if not has_more:
            return
        next_cursor = data[0]["id"] if backward else data[-1]["id"]
        if next_cursor == cursor:
            raise PaginationError(f"the list did not advance past cursor {cursor!r}")
        cursor = next_cursor
