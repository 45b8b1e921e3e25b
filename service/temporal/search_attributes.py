"""Custom search attributes that serve the workflow list from Temporal visibility."""

from __future__ import annotations

from typing import Final

from temporalio.common import SearchAttributeKey

__all__ = [
    "CUSTOM_SEARCH_ATTRIBUTES",
    "NAME",
    "ORDER",
    "STATUS",
    "TICKET_ID",
    "TRIGGER_TYPE",
]

STATUS: Final = SearchAttributeKey.for_keyword("ProtocolStatus")
NAME: Final = SearchAttributeKey.for_keyword("ProtocolName")
TRIGGER_TYPE: Final = SearchAttributeKey.for_keyword("ProtocolTriggerType")
TICKET_ID: Final = SearchAttributeKey.for_keyword("ProtocolTicketId")
# A unique, time-ordered integer encoded in the workflow id; the pagination cursor.
ORDER: Final = SearchAttributeKey.for_int("ProtocolOrder")

# name -> type as the dev server's --search-attribute flag spells it
CUSTOM_SEARCH_ATTRIBUTES: Final[dict[str, str]] = {
    STATUS.name: "Keyword",
    NAME.name: "Keyword",
    TRIGGER_TYPE.name: "Keyword",
    TICKET_ID.name: "Keyword",
    ORDER.name: "Int",
}
