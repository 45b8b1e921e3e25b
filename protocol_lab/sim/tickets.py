"""Tickets and the service desk: opening, updating and resolving simulated tickets.

A simulated ticket carries the fields the service's rules read (id, title, category, priority,
status, timestamps...). Opening one fires the ``on_ticket_created`` rules; every change fires the
``on_ticket_updated`` rules with the record before the change, as the service does. A ticket that
no workflow resolves goes to the agents, who resolve it after a working-time duration drawn from
its stream's ``resolution`` model on the business calendar (None: it stays open).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import simpy

from protocol_lab.domain.tickets import TicketStatus
from protocol_lab.sim.business_clock import BusinessClock
from protocol_lab.sim.sampling import Sampler
from protocol_lab.sim.scenario import ArrivalStream

if TYPE_CHECKING:
    from protocol_lab.sim.firing import RuleEngine

__all__ = ["FIRST_TICKET", "Ticket", "TicketDesk"]

FIRST_TICKET = 10001
_CLOSED = frozenset({TicketStatus.RESOLVED.value, TicketStatus.CLOSED.value})


def _unwired(ticket: Ticket) -> None:
    raise RuntimeError("the desk has no rule engine")


class Ticket:
    """A simulated ticket: its record (what rules see) and bookkeeping."""

    __slots__ = ("active_workflows", "number", "record", "stream", "version", "with_agents")

    def __init__(self, number: int, stream: int, record: dict[str, Any]) -> None:
        self.number = number
        self.stream = stream
        self.record = record
        self.version = 0
        self.active_workflows = 0
        self.with_agents = False

    @property
    def closed(self) -> bool:
        """Resolved or closed."""
        return self.record["status"] in _CLOSED


class TicketDesk:
    """Opens tickets, applies updates (firing rules) and hands unresolved ones to agents."""

    def __init__(
        self,
        env: simpy.Environment,
        *,
        streams: Sequence[ArrivalStream],
        resolution: Sequence[Sampler | None],
        clock: BusinessClock,
    ) -> None:
        self.env = env
        self.streams = list(streams)
        self.resolution = list(resolution)
        self.clock = clock
        self.rules: RuleEngine | None = None
        self._index: dict[tuple[int, str], int] = {
            (k, t): i for k, s in enumerate(streams) for i, t in enumerate(s.titles)
        }
        self.on_created: Callable[[Ticket], None] = _unwired
        self._templates: list[list[dict[str, Any]]] = [
            [
                {
                    "id": None,
                    "title": title,
                    "description": None,
                    "category": spec.category,
                    "priority": spec.priority.value,
                    "status": TicketStatus.OPEN.value,
                    "assignee": None,
                    "requester": "requester",
                    "created_at": None,
                    "updated_at": None,
                    "last_activity_at": None,
                }
                for title in spec.titles
            ]
            for spec in self.streams
        ]
        self.opened = 0
        self.updates = 0
        self.resolved_by_agents = 0

    def open_ticket(self, stream: int, title: int) -> Ticket:
        """Open a ticket of ``stream`` with its ``title``-th title, and fire the created rules."""
        now = self.env._now
        number = FIRST_TICKET + self.opened
        self.opened += 1
        record = self._templates[stream][title].copy()
        record["id"] = f"TKT-{number}"
        record["created_at"] = record["updated_at"] = record["last_activity_at"] = now
        ticket = Ticket(number, stream, record)
        self.on_created(ticket)
        if not ticket.active_workflows and self.resolution[stream] is not None:
            self.hand_to_agents(ticket)
        return ticket

    def open_ticket_titled(self, stream: int, title: int, *, titles: Sequence[str]) -> Ticket:
        """Open a ticket of ``stream`` with the title ``titles[title]`` (observed arrivals)."""
        known = self._index.get((stream, titles[title]))
        if known is None:
            record = dict(self._templates[stream][0])
            record["title"] = titles[title]
            known = self._index[(stream, titles[title])] = len(self._templates[stream])
            self._templates[stream].append(record)
        return self.open_ticket(stream, known)

    def update(self, ticket: Ticket, fields: Mapping[str, Any], *, depth: int = 0) -> bool:
        """Set fields; if anything changed, stamp the ticket and fire the updated rules."""
        record = ticket.record
        changed = {k: v for k, v in fields.items() if record.get(k) != v}
        if not changed:
            return False
        previous = dict(record)
        now = self.env.now
        record.update(changed)
        record["updated_at"] = now
        record["last_activity_at"] = now
        ticket.version += 1
        self.updates += 1
        assert self.rules is not None
        self.rules.on_updated(ticket, previous, depth=depth)
        return True

    def workflow_ended(self, ticket: Ticket) -> None:
        """A workflow of this ticket ended; if none is left and it is open, agents take it."""
        ticket.active_workflows -= 1
        if (
            not ticket.active_workflows
            and self.resolution[ticket.stream] is not None
            and not ticket.closed
        ):
            self.hand_to_agents(ticket)

    def hand_to_agents(self, ticket: Ticket) -> None:
        """Agents will resolve the ticket after its stream's working-time resolution."""
        model = self.resolution[ticket.stream]
        if model is None or ticket.with_agents or ticket.closed:
            return
        ticket.with_agents = True
        self.env.process(self._agent_resolves(ticket, model))

    def _agent_resolves(self, ticket: Ticket, model: Sampler) -> Generator[Any, Any, None]:
        now = self.env.now
        yield self.env.timeout(self.clock.add(now, model()) - now)
        ticket.with_agents = False
        if not ticket.closed:
            self.resolved_by_agents += 1
            self.update(ticket, {"status": TicketStatus.RESOLVED.value})
