"""What the workflow service functions need, and how Temporal failures become service errors.

A process's :class:`~service.state.Resources` and the rule engine's
:class:`~service.automation.context.AutomationContext` both satisfy :class:`TemporalContext`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from protocol_lab.domain import Catalog
from service.errors import ConflictError, InvalidRequestError, NotFoundError, UnavailableError
from service.settings import Settings

__all__ = [
    "RPC_TIMEOUT",
    "TemporalContext",
    "temporal_errors",
]

RPC_TIMEOUT = timedelta(seconds=10)


class TemporalContext(Protocol):
    """Settings, a Temporal client, the catalog and the SQL store."""

    @property
    def settings(self) -> Settings:
        """Service settings (time_scale default)."""
        ...

    @property
    def temporal(self) -> Client:
        """The Temporal client."""
        ...

    @property
    def catalog(self) -> Catalog:
        """The workflow catalog."""
        ...

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        """Sessions on the SQL store (definitions, drafts, the timeline archive)."""
        ...


def _closed_or_refused(exc: RPCError) -> bool:
    if exc.status in (RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.ALREADY_EXISTS):
        return True
    # Temporal answers an operation on a closed execution with NOT_FOUND and this message.
    return exc.status == RPCStatusCode.NOT_FOUND and "already completed" in exc.message.lower()


@contextlib.contextmanager
def temporal_errors(workflow_id: str | None = None) -> Iterator[None]:
    """Turn Temporal RPC and connection failures into service errors (404, 409, 400, 503).

    A workflow that closed, or that refuses the operation in its current state, is a 409: the
    request is wrong for the workflow as it is now, not the service unavailable.
    """
    try:
        yield
    except RPCError as exc:
        if _closed_or_refused(exc):
            where = f"workflow {workflow_id}" if workflow_id is not None else "the workflow"
            raise ConflictError(f"{where} cannot take this now: {exc.message}") from None
        if exc.status == RPCStatusCode.NOT_FOUND and workflow_id is not None:
            raise NotFoundError(f"no workflow {workflow_id!r}") from None
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:
            raise InvalidRequestError(f"Temporal refused the request: {exc.message}") from None
        raise UnavailableError(
            f"Temporal is unavailable ({exc.status.name if exc.status else 'error'}); retry"
        ) from None
    except RuntimeError as exc:
        # The lazy client raises RuntimeError when it cannot connect.
        if "connect" in str(exc).lower():
            raise UnavailableError("Temporal is unavailable; retry") from None
        raise
