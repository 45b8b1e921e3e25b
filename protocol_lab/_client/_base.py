"""``_BaseClient``: everything the two client twins share that is not I/O.

It holds the configuration (base URL, token, timeout, retry policy, extra headers), builds
requests (URL, query, JSON body, ``Authorization``, ``Idempotency-Key`` for every POST),
starts the retry and pagination flows and maps responses to values or errors.
``Client`` and ``AsyncClient`` add only the sending and the sleeping.
"""

from __future__ import annotations

import random as random_module
import uuid
from collections.abc import Callable, Generator, Mapping
from typing import Any, Final, TypeVar

import httpx
import pydantic

from protocol_lab._client._endpoints import Call, Listing
from protocol_lab._client._errors import ApiDecodeError, status_error_from
from protocol_lab._client._pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Emit,
    Fetch,
    cursor_flow,
    parse_page,
)
from protocol_lab._client._retry import (
    IDEMPOTENCY_HEADER,
    Outcome,
    RetryPolicy,
    Send,
    Sleep,
    retry_flow,
)
from protocol_lab._client.models import ApiModel, PageData

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "USE_CLIENT_DEFAULT",
    "JSONObject",
    "ModelT",
    "TimeoutTypes",
    "UseClientDefault",
    "page_model",
]

JSONObject = dict[str, Any]
TimeoutTypes = float | httpx.Timeout | None

DEFAULT_BASE_URL: Final = "http://localhost:3000"
DEFAULT_TIMEOUT: Final = httpx.Timeout(30.0, connect=5.0)
USER_AGENT: Final = "protocol-lab-client/0.1"


class UseClientDefault:
    """Type of :data:`USE_CLIENT_DEFAULT`: "use the client's setting", as opposed to ``None``."""

    def __repr__(self) -> str:
        """``USE_CLIENT_DEFAULT``."""
        return "USE_CLIENT_DEFAULT"


USE_CLIENT_DEFAULT: Final = UseClientDefault()

ModelT = TypeVar("ModelT", bound=ApiModel)


def page_model(item: type[ModelT]) -> type[PageData[ModelT]]:
    """The model of a page of ``item`` (``PageData[item]``)."""
    model: type[PageData[ModelT]] = PageData[item]  # type: ignore[valid-type]
    return model


def _as_timeout(timeout: TimeoutTypes) -> httpx.Timeout:
    return timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)


class _BaseClient:
    """Configuration, request building and response mapping shared by both twins."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str | None,
        timeout: TimeoutTypes,
        retry: RetryPolicy | None,
        headers: Mapping[str, str] | None,
        random: Callable[[], float] | None,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        self._base_url = str(url.copy_with(query=None, fragment=None)).rstrip("/")
        self._token = token
        self._timeout = _as_timeout(timeout)
        self._retry = retry if retry is not None else RetryPolicy()
        self._headers = httpx.Headers(headers)
        self._random = random if random is not None else random_module.random

    @property
    def base_url(self) -> str:
        """The API's root, without the ``/v1`` prefix (e.g. ``http://localhost:3000``)."""
        return self._base_url

    @property
    def timeout(self) -> httpx.Timeout:
        """The default timeout of every request."""
        return self._timeout

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy."""
        return self._retry

    def __repr__(self) -> str:
        """Class and base URL (never the token)."""
        return f"{type(self).__name__}(base_url={self._base_url!r})"

    # -- requests --------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        if not path.startswith("/"):
            path = "/" + path
        return self._base_url + path

    def _request_headers(self) -> httpx.Headers:
        headers = httpx.Headers({"Accept": "application/json", "User-Agent": USER_AGENT})
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        headers.update(self._headers)
        return headers

    @staticmethod
    def new_idempotency_key() -> str:
        """A fresh idempotency key (a random UUID)."""
        return str(uuid.uuid4())

    def build_request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
        auto_idempotency_key: bool = True,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> httpx.Request:
        """The request for ``method path`` (path under the base URL, e.g. ``/v1/workflows``).

        Every POST carries an ``Idempotency-Key``: ``idempotency_key`` if given, else a new
        one (unless ``auto_idempotency_key`` is false), so that the retries of this one
        logical call are recognised by the API. A request with a key is retried after errors
        that may have happened after the server acted; one without only when it cannot have
        reached the server.
        """
        method = method.upper()
        headers = self._request_headers()
        if idempotency_key is None and method == "POST" and auto_idempotency_key:
            idempotency_key = self.new_idempotency_key()
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        chosen = self._timeout if isinstance(timeout, UseClientDefault) else _as_timeout(timeout)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        return httpx.Request(
            method,
            self._url(path),
            params=query or None,
            headers=headers,
            json=json,
            extensions={"timeout": chosen.as_dict()},
        )

    def _build_call(self, call: Call) -> httpx.Request:
        return self.build_request(
            call.method,
            call.path,
            params=call.params,
            json=call.json,
            idempotency_key=call.idempotency_key,
            auto_idempotency_key=call.auto_idempotency_key,
        )

    def _retry_flow(
        self, request: httpx.Request
    ) -> Generator[Send | Sleep, Outcome, httpx.Response]:
        return retry_flow(request, policy=self._retry, random=self._random)

    # -- lists -----------------------------------------------------------------------------

    @staticmethod
    def _page_call(
        listing: Listing,
        *,
        limit: int | None,
        starting_after: str | None,
        ending_before: str | None,
    ) -> Call:
        if limit is not None and (isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_SIZE):
            raise ValueError(f"limit must be within 1..{MAX_PAGE_SIZE}, got {limit!r}")
        if starting_after is not None and ending_before is not None:
            raise ValueError("give starting_after or ending_before, not both")
        params = dict(listing.params)
        params.update(
            {
                k: v
                for k, v in (
                    ("limit", limit),
                    ("starting_after", starting_after),
                    ("ending_before", ending_before),
                )
                if v is not None
            }
        )
        return Call("GET", listing.path, params=params)

    @staticmethod
    def _cursor_flow(
        listing: Listing,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> Generator[Fetch | Emit, JSONObject | None, None]:
        return cursor_flow(
            listing.params,
            page_size=page_size,
            starting_after=starting_after,
            ending_before=ending_before,
        )

    # -- responses -------------------------------------------------------------------------

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        """The JSON value of a read response (None when empty); raises the mapped error for
        an error status."""
        if response.is_error:
            raise status_error_from(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ApiDecodeError(
                f"{response.request.method} {response.request.url}: response is not JSON",
                request=response.request,
                response=response,
            ) from exc

    @classmethod
    def _decode_object(cls, response: httpx.Response) -> JSONObject:
        value = cls._decode(response)
        if not isinstance(value, dict):
            raise ApiDecodeError(
                f"{response.request.method} {response.request.url}: expected a JSON object, "
                f"got {type(value).__name__}",
                request=response.request,
                response=response,
            )
        return value

    @classmethod
    def _decode_optional_object(cls, response: httpx.Response) -> JSONObject | None:
        if response.status_code == 204 or not response.content:
            cls._decode(response)
            return None
        return cls._decode_object(response)

    @staticmethod
    def _validate(response: httpx.Response, model: type[ModelT], value: JSONObject) -> ModelT:
        try:
            return model.from_json(value)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(body)"
            raise ApiDecodeError(
                f"{response.request.method} {response.request.url}: the answer is not a "
                f"{model.__name__}: {where}: {first['msg']} ({exc.error_count()} problem(s))",
                request=response.request,
                response=response,
            ) from exc

    @classmethod
    def _decode_model(cls, response: httpx.Response, model: type[ModelT]) -> ModelT:
        """The answer as ``model`` (its JSON in ``.raw``); ApiDecodeError when it does not
        have the model's shape."""
        return cls._validate(response, model, cls._decode_object(response))

    @classmethod
    def _decode_page(cls, response: httpx.Response, item: type[ModelT]) -> PageData[ModelT]:
        """A list answer as a page of ``item``: PaginationError when it is not a page at all,
        ApiDecodeError when an item does not have the model's shape."""
        value = cls._decode_object(response)
        parse_page(value)
        return cls._validate(response, page_model(item), value)
