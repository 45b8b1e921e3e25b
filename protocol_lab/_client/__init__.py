"""Implementation of :mod:`protocol_lab.client`; import from there, not from here.

``_base`` (pure logic shared by the twins), ``_sync`` / ``_async`` (the twins, I/O only),
``_endpoints`` (request descriptions), ``_pagination`` and ``_retry`` (sans-I/O flows),
``_errors`` (the error tree), ``models`` (the typed answers), ``_unasync`` (generates
``_sync`` from ``_async``).
"""

from __future__ import annotations

from protocol_lab._client._async import AsyncClient, AsyncPage
from protocol_lab._client._base import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    USE_CLIENT_DEFAULT,
    UseClientDefault,
)
from protocol_lab._client._endpoints import NOT_GIVEN, NotGiven
from protocol_lab._client._errors import (
    ApiDecodeError,
    ApiError,
    ApiRequestError,
    ApiServerError,
    ApiStatusError,
    ApiTimeoutError,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from protocol_lab._client._pagination import PaginationError
from protocol_lab._client._retry import RetryPolicy
from protocol_lab._client._sync import Client, Page
from protocol_lab._client.models import (
    Action,
    ApiModel,
    CancelResult,
    ControlResult,
    Deleted,
    DryRunResult,
    PageData,
    QueueCounts,
    QueueList,
    Rule,
    RuleExecution,
    SecretRotated,
    SendNotificationAction,
    SignalResult,
    StartWorkflowAction,
    Ticket,
    TimelineEntry,
    ToggleResult,
    UpdateFieldAction,
    Workflow,
    WorkflowDefinition,
    WorkflowDefinitionList,
    WorkflowState,
    WorkflowStatus,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "NOT_GIVEN",
    "USE_CLIENT_DEFAULT",
    "Action",
    "ApiDecodeError",
    "ApiError",
    "ApiModel",
    "ApiRequestError",
    "ApiServerError",
    "ApiStatusError",
    "ApiTimeoutError",
    "AsyncClient",
    "AsyncPage",
    "AuthenticationError",
    "CancelResult",
    "Client",
    "ConflictError",
    "ControlResult",
    "Deleted",
    "DryRunResult",
    "InvalidRequestError",
    "NotFoundError",
    "NotGiven",
    "Page",
    "PageData",
    "PaginationError",
    "PermissionDeniedError",
    "QueueCounts",
    "QueueList",
    "RateLimitError",
    "RetryPolicy",
    "Rule",
    "RuleExecution",
    "SecretRotated",
    "SendNotificationAction",
    "SignalResult",
    "StartWorkflowAction",
    "Ticket",
    "TimelineEntry",
    "ToggleResult",
    "UpdateFieldAction",
    "UseClientDefault",
    "Workflow",
    "WorkflowDefinition",
    "WorkflowDefinitionList",
    "WorkflowState",
    "WorkflowStatus",
]
