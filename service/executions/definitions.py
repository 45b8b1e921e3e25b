"""Workflow definitions at run time: the catalog (version 1) plus versions stored over the API.

A name resolves to its newest version: a stored one if there is one, else the catalog's. Every
start resolves its plan here and sends the plan itself in the workflow's input, so a running
workflow keeps the version it started with whatever is stored later. Definitions are
validated like the YAML of ``data/definitions`` (:class:`~protocol_lab.domain.WorkflowPlan`) and
bounded (:data:`LIMITS`): name, steps, texts, timeouts, the plan's size, how many names and
versions the store keeps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from protocol_lab.domain import ActivityStep, SignalStep, WorkflowPlan
from service.errors import ConflictError, InvalidRequestError
from service.executions.context import TemporalContext
from service.store.definitions import (
    VersionTakenError,
    count_definition_names,
    count_versions,
    definition_version,
    insert_definition,
    latest_definition,
    latest_definitions,
)

__all__ = [
    "BUILTIN_VERSION",
    "LIMITS",
    "NAME_PATTERN",
    "Definition",
    "DefinitionLimits",
    "defined_names",
    "find_definition",
    "list_definitions",
    "require_definition",
    "save_definition",
    "workflow_defined",
]

BUILTIN_VERSION: Final = 1
# Printable names that read well in a URL path: letters, digits, space and a little punctuation.
NAME_PATTERN: Final = r"^[A-Za-z0-9](?:[A-Za-z0-9 _.,:()&+'-]{0,98}[A-Za-z0-9)])?$"


@dataclass(frozen=True)
class DefinitionLimits:
    """The bounds on a definition written over the API."""

    name_chars: int = 100
    steps: int = 50
    text_chars: int = 200
    id_chars: int = 64
    params_bytes: int = 4096
    plan_bytes: int = 64 * 1024
    timeout_s: float = 30 * 86400.0
    retry_interval_s: float = 86400.0
    stored_names: int = 200
    versions_per_name: int = 100


LIMITS: Final = DefinitionLimits()


@dataclass(frozen=True)
class Definition:
    """One version of a workflow definition and where it comes from."""

    plan: WorkflowPlan
    version: int
    builtin: bool
    created_at: float | None = None


def _stored(row: Any) -> Definition:
    return Definition(
        plan=WorkflowPlan.model_validate_json(row.plan),
        version=int(row.version),
        builtin=False,
        created_at=float(row.created_at),
    )


async def find_definition(
    ctx: TemporalContext, name: str, *, version: int | None = None
) -> Definition | None:
    """The newest version of ``name`` (or version ``version``), or None when there is none."""
    builtin = ctx.catalog.get(name)
    if version == BUILTIN_VERSION and builtin is not None:
        return Definition(plan=builtin, version=BUILTIN_VERSION, builtin=True)
    async with ctx.sessionmaker() as session:
        row = (
            await latest_definition(session, name=name)
            if version is None
            else await definition_version(session, name=name, version=version)
        )
    if row is not None:
        return _stored(row)
    if builtin is not None and version is None:
        return Definition(plan=builtin, version=BUILTIN_VERSION, builtin=True)
    return None


async def workflow_defined(ctx: TemporalContext, name: str) -> bool:
    """True when ``name`` is a workflow of the catalog or a stored definition."""
    return name in ctx.catalog or await find_definition(ctx, name) is not None


async def list_definitions(ctx: TemporalContext) -> list[Definition]:
    """The newest version of every defined workflow, by name."""
    found = {
        name: Definition(plan=plan, version=BUILTIN_VERSION, builtin=True)
        for name, plan in ctx.catalog.items()
    }
    async with ctx.sessionmaker() as session:
        rows = await latest_definitions(session, limit=LIMITS.stored_names + len(found))
    found.update((row.name, _stored(row)) for row in rows)
    return [found[name] for name in sorted(found)]


async def defined_names(ctx: TemporalContext) -> list[str]:
    """Every defined workflow name, sorted."""
    return [d.plan.name for d in await list_definitions(ctx)]


async def require_definition(ctx: TemporalContext, name: str) -> Definition:
    """The newest version of ``name``; InvalidRequestError naming the known workflows when
    unknown."""
    found = await find_definition(ctx, name)
    if found is None:
        known = ", ".join(await defined_names(ctx))
        raise InvalidRequestError(f"unknown workflow name {name[:100]!r}; known: {known}")
    return found


def _too_long(value: str | None, limit: int) -> bool:
    return value is not None and len(value) > limit


def _check_bounds(plan: WorkflowPlan, size: int) -> None:
    limits = LIMITS
    if size > limits.plan_bytes:
        raise InvalidRequestError(f"the definition is {size} bytes; at most {limits.plan_bytes}")
    if len(plan.steps) > limits.steps:
        raise InvalidRequestError(f"steps: at most {limits.steps} steps")
    if _too_long(plan.description, 2000) or _too_long(plan.category, limits.id_chars):
        raise InvalidRequestError("description or category too long (2000 and 64 characters)")
    for index, step in enumerate(plan.steps):
        where = f"steps.{index}"
        if _too_long(step.id, limits.id_chars):
            raise InvalidRequestError(f"{where}.id: at most {limits.id_chars} characters")
        if _too_long(step.detail, limits.text_chars) or _too_long(step.done, limits.text_chars):
            raise InvalidRequestError(
                f"{where}: detail and done take at most {limits.text_chars} characters"
            )
        if step.timeout_s > limits.timeout_s:
            raise InvalidRequestError(f"{where}.timeout_s: at most {limits.timeout_s:g} s")
        if isinstance(step, SignalStep) and _too_long(step.signal, limits.id_chars):
            raise InvalidRequestError(f"{where}.signal: at most {limits.id_chars} characters")
        if isinstance(step, ActivityStep):
            _check_activity(step, where)


def _check_activity(step: ActivityStep, where: str) -> None:
    limits = LIMITS
    if _too_long(step.integration, limits.id_chars):
        raise InvalidRequestError(f"{where}.integration: at most {limits.id_chars} characters")
    retry = step.retry
    if max(retry.initial_interval_s, retry.max_interval_s) > limits.retry_interval_s:
        raise InvalidRequestError(
            f"{where}.retry: intervals of at most {limits.retry_interval_s:g} s"
        )
    params = [step.params] + ([step.compensation.params] if step.compensation else [])
    if any(len(json.dumps(p)) > limits.params_bytes for p in params):
        raise InvalidRequestError(f"{where}.params: at most {limits.params_bytes} bytes of JSON")
    if step.compensation is not None and _too_long(step.compensation.detail, limits.text_chars):
        raise InvalidRequestError(
            f"{where}.compensation.detail: at most {limits.text_chars} characters"
        )


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(root)"
    return f"{loc}: {str(first['msg']).removeprefix('Value error, ')}"


def validate_definition(name: str, body: dict[str, Any]) -> WorkflowPlan:
    """The plan of ``body`` named ``name``, validated like the catalog's YAML and bounded;
    InvalidRequestError naming the field otherwise."""
    given = body.get("name")
    if given is not None and given != name:
        raise InvalidRequestError(f"name: {given!r} differs from the name in the path {name!r}")
    try:
        plan = WorkflowPlan.model_validate({**body, "name": name})
    except ValidationError as exc:
        raise InvalidRequestError(_describe(exc)) from None
    _check_bounds(plan, len(plan.model_dump_json()))
    return plan


async def save_definition(
    ctx: TemporalContext,
    *,
    name: str,
    body: dict[str, Any],
    created_by: str,
    create_only: bool,
) -> tuple[Definition, bool]:
    """Store ``body`` as the next version of ``name``; returns (definition, stored).

    ``create_only`` (POST): 409 when ``name`` is defined already. Otherwise (PUT) a body equal
    to the newest version stores nothing and answers that version (a retried PUT is not a
    second version). 409 when the store's bounds are reached or another writer took the
    version; 503 without a store.
    """
    plan = validate_definition(name, body)
    maker = ctx.sessionmaker
    current = await find_definition(ctx, name)
    if current is not None and create_only:
        raise ConflictError(
            f"workflow {name!r} is defined (version {current.version});"
            f" PUT /v1/workflow-definitions/{name} adds a version"
        )
    if current is not None and current.plan == plan:
        return current, False
    async with maker() as session:
        if current is None or current.builtin:
            if await count_definition_names(session) >= LIMITS.stored_names:
                raise ConflictError(
                    f"the store holds {LIMITS.stored_names} workflow definitions, its limit"
                )
        elif await count_versions(session, name=name) >= LIMITS.versions_per_name:
            raise ConflictError(
                f"workflow {name!r} has {LIMITS.versions_per_name} versions, the limit"
            )
        version = BUILTIN_VERSION if current is None else current.version + 1
        try:
            row = await insert_definition(
                session,
                name=name,
                version=version,
                plan_json=plan.model_dump_json(),
                created_by=created_by,
            )
        except VersionTakenError:
            raise ConflictError(
                f"workflow {name!r} changed while this request was stored; send it again"
            ) from None
    return _stored(row), True
