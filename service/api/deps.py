"""Dependencies as ``Annotated`` aliases: the process's resources, a store session, bearer-token
scopes."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from service.api.errors import ApiError
from service.settings import Scope, Settings
from service.state import Resources

__all__ = [
    "AdminAuth",
    "Principal",
    "ReadAuth",
    "SessionDep",
    "StateDep",
    "WriteAuth",
    "idempotency_scope",
    "require_scope",
]

_bearer = HTTPBearer(auto_error=False, description="API token; scopes read, write, admin")


async def get_state(request: Request) -> Resources:
    """The process's resources opened by the lifespan (a coroutine: FastAPI runs a plain function
    dependency in a worker thread, a thread hop on every request)."""
    state: Resources = request.app.state.protocol
    return state


StateDep = Annotated[Resources, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """A store session for one request."""
    async with state.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a token's fingerprint and its scopes.

    ``subject`` is a stable hash of the token: it scopes idempotency keys per caller.
    """

    token_id: str
    scopes: frozenset[str]
    subject: str = ""


def _authenticate(settings: Settings, token: str) -> Principal | None:
    # Compare against every configured token in constant time, without stopping early.
    found: str | None = None
    for candidate in settings.api_tokens:
        if hmac.compare_digest(candidate.encode(), token.encode()):
            found = candidate
    if found is None:
        return None
    return Principal(
        token_id=found[:6] + "…",
        scopes=settings.scopes_of(found),
        subject=hashlib.sha256(found.encode()).hexdigest()[:24],
    )


def idempotency_scope(principal: Principal, request_kind: str) -> str:
    """Where ``principal``'s Idempotency-Keys for ``request_kind`` live (e.g. ``rules``).

    Keys belong to the calling token: another token's same key is another request.
    """
    return f"{request_kind}:{principal.subject}"


def require_scope(scope: Scope) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that demands a valid bearer token holding ``scope``."""

    async def dependency(
        state: StateDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise ApiError(401, "missing bearer token: send 'Authorization: Bearer <token>'")
        principal = _authenticate(state.settings, credentials.credentials)
        if principal is None:
            raise ApiError(401, "invalid API token")
        if scope not in principal.scopes:
            raise ApiError(403, f"this token lacks the {scope!r} scope")
        return principal

    return dependency


ReadAuth = Annotated[Principal, Depends(require_scope("read"))]
WriteAuth = Annotated[Principal, Depends(require_scope("write"))]
AdminAuth = Annotated[Principal, Depends(require_scope("admin"))]
