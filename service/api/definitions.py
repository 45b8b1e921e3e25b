"""The workflow definition endpoints: list and read (read scope), add and version (admin).

Handlers validate and call :mod:`service.executions.definitions`. A definition is validated like
the YAML of ``data/definitions`` and bounded; new executions use the newest version, running ones
keep theirs.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from service.api.deps import AdminAuth, ReadAuth, StateDep
from service.api.errors import ApiError, ErrorBody
from service.executions.definitions import (
    LIMITS,
    NAME_PATTERN,
    Definition,
    find_definition,
    list_definitions,
    save_definition,
)
from service.executions.models import (
    WorkflowDefinition,
    WorkflowDefinitionList,
    WorkflowDefinitionWrite,
)

__all__ = ["router"]

router = APIRouter(
    prefix="/workflow-definitions",
    tags=["workflow definitions"],
    responses={400: {"model": ErrorBody, "description": "invalid_request: a bad definition"}},
)

DefinitionName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=LIMITS.name_chars,
        pattern=NAME_PATTERN,
        description="the workflow's name (letters, digits, spaces and - _ . , : ( ) & + ')",
        examples=["Shared Mailbox Access"],
    ),
]
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "permission_error: needs admin"},
    409: {
        "model": ErrorBody,
        "description": "conflict: the name exists (POST), a concurrent write took the version,"
        f" or the store holds {LIMITS.stored_names} names / {LIMITS.versions_per_name} versions",
    },
}


def definition_view(found: Definition) -> dict[str, Any]:
    """The API's object of one definition version."""
    plan = found.plan
    return {
        "name": plan.name,
        "version": found.version,
        "builtin": found.builtin,
        "task_queue": plan.task_queue.value,
        "description": plan.description,
        "category": plan.category,
        "signals": sorted(plan.signals),
        "steps": [step.model_dump(mode="json") for step in plan.steps],
        "created_at": found.created_at,
    }


def _body(write: WorkflowDefinitionWrite) -> dict[str, Any]:
    return write.model_dump(mode="json", exclude_none=True)


@router.get("", response_model=WorkflowDefinitionList, summary="List workflow definitions")
async def list_all(_: ReadAuth, state: StateDep) -> dict[str, Any]:
    """The newest version of every workflow that can be started: the catalog's and those
    added over the API, by name."""
    return {"data": [definition_view(found) for found in await list_definitions(state)]}


@router.get(
    "/{name}",
    response_model=WorkflowDefinition,
    summary="Retrieve a workflow definition",
    responses={404: {"model": ErrorBody, "description": "not_found: no such definition"}},
)
async def retrieve(
    _: ReadAuth,
    state: StateDep,
    name: DefinitionName,
    version: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="a version (default: the newest)")
    ] = None,
) -> dict[str, Any]:
    """One version of a definition (the newest by default)."""
    found = await find_definition(state, name, version=version)
    if found is None:
        which = f" version {version}" if version is not None else ""
        raise ApiError.not_found(f"no workflow definition {name!r}{which}")
    return definition_view(found)


@router.post(
    "",
    response_model=WorkflowDefinition,
    status_code=HTTPStatus.CREATED,
    summary="Add a workflow definition (name in the body)",
    responses=_WRITE_ERRORS,
)
async def create_named_in_body(
    principal: AdminAuth, state: StateDep, body: WorkflowDefinitionWrite
) -> dict[str, Any]:
    """Add a new workflow (version 1); 409 when the name is defined already."""
    if body.name is None:
        raise ApiError.invalid("name: required (or POST /v1/workflow-definitions/{name})")
    found, _ = await save_definition(
        state, name=body.name, body=_body(body), created_by=principal.subject, create_only=True
    )
    return definition_view(found)


@router.post(
    "/{name}",
    response_model=WorkflowDefinition,
    status_code=HTTPStatus.CREATED,
    summary="Add a workflow definition",
    responses=_WRITE_ERRORS,
)
async def create(
    principal: AdminAuth, state: StateDep, name: DefinitionName, body: WorkflowDefinitionWrite
) -> dict[str, Any]:
    """Add a new workflow (version 1); 409 when the name is defined already (PUT versions it)."""
    found, _ = await save_definition(
        state, name=name, body=_body(body), created_by=principal.subject, create_only=True
    )
    return definition_view(found)


@router.put(
    "/{name}",
    response_model=WorkflowDefinition,
    status_code=HTTPStatus.CREATED,
    summary="Add or version a workflow definition",
    responses={
        **_WRITE_ERRORS,
        200: {
            "model": WorkflowDefinition,
            "description": "the body equals the newest version: nothing stored, that version",
        },
    },
)
async def put(
    principal: AdminAuth,
    state: StateDep,
    name: DefinitionName,
    body: WorkflowDefinitionWrite,
    response: Response,
) -> dict[str, Any]:
    """Store the next version of ``name`` (version 1 for a new name, 2 for the first change of
    a built-in one): 201 with it. New executions use it; running ones keep their version."""
    found, stored = await save_definition(
        state, name=name, body=_body(body), created_by=principal.subject, create_only=False
    )
    if not stored:
        response.status_code = HTTPStatus.OK
    return definition_view(found)
