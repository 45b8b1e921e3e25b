"""The OpenAPI document as the API behaves: every error it can answer, in the shape it sends.

FastAPI documents a 422 ``HTTPValidationError`` on every operation with parameters, yet
validation failures are answered with a 400 :class:`~service.api.errors.ErrorBody`. The document
is post-processed once: the 422 goes, every path with an ``{id}`` documents its 404, the
operations that refuse a request in conflict with the resource's state document their 409, every
operation taking a body documents the 413 of an oversized one, and every error response carries
the ``ErrorBody`` schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from fastapi import FastAPI

__all__ = ["CONFLICTS", "honest_openapi", "install_openapi"]

_ERROR_REF: Final = {"$ref": "#/components/schemas/ErrorBody"}
_BODY_METHODS: Final = frozenset({"post", "put", "patch"})
_FASTAPI_VALIDATION_SCHEMAS: Final = ("HTTPValidationError", "ValidationError")

# (method, path) -> why the operation may answer 409 conflict.
CONFLICTS: Final[dict[tuple[str, str], str]] = {
    ("post", "/v1/workflows"): "conflict: the Idempotency-Key was used with another request",
    ("post", "/v1/workflows/{workflow_id}/signal"): "conflict: the workflow cannot take it now",
    ("post", "/v1/workflows/{workflow_id}/cancel"): "conflict: the workflow is already closed",
    ("post", "/v1/workflows/{workflow_id}/pause"): "conflict: the workflow cannot pause now",
    ("post", "/v1/workflows/{workflow_id}/resume"): "conflict: the workflow cannot resume now",
    ("post", "/v1/automation/rules"): "conflict: an update_field cycle or a reused key",
    ("patch", "/v1/automation/rules/{rule_id}"): "conflict: would close an update_field cycle",
    ("post", "/v1/automation/rules/{rule_id}/toggle"): "conflict: would close a cycle",
    ("post", "/v1/automation/webhooks/{rule_id}"): "conflict: the rule is disabled",
    ("post", "/v1/tickets"): "conflict: the Idempotency-Key was used with another request",
    ("post", "/v1/jobs/queues/{queue}/jobs/{job_id}/retry"): "conflict: the job is not failed",
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def _document_errors(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    if "{" in path:
        responses.setdefault("404", _error("not_found: no such resource"))
    conflict = CONFLICTS.get((method, path))
    if conflict is not None:
        responses.setdefault("409", _error(conflict))
    if method in _BODY_METHODS:
        responses.setdefault("413", _error("invalid_request: the request body is too large"))
    for code, response in responses.items():
        if code[0] in "45" and "content" not in response:
            response["content"] = _error(response.get("description", ""))["content"]


def honest_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a FastAPI document in place so its errors are the ones the API sends; return it."""
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "responses" in operation:
                _document_errors(path, method, operation)
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`honest_openapi` of the app's generated document (built once, then cached)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = honest_openapi(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
