"""The sans-I/O parts of the client: retry and pagination flows, error mapping, backoff."""

from __future__ import annotations

import email.utils
from collections.abc import Generator

import httpx
import pytest

from protocol_lab._client._errors import (
    ApiError,
    ApiRequestError,
    ApiServerError,
    ApiStatusError,
    ApiTimeoutError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    status_error_from,
)
from protocol_lab._client._pagination import Emit, Fetch, PaginationError, cursor_flow
from protocol_lab._client._retry import (
    Outcome,
    RetryPolicy,
    Send,
    Sleep,
    parse_retry_after,
    retry_flow,
)
from protocol_lab.domain import ProtocolLabError

URL = "http://api.test/v1/workflows"


def _response(request: httpx.Request, status: int, **kwargs: object) -> httpx.Response:
    return httpx.Response(status, request=request, **kwargs)  # type: ignore[arg-type]


def _drive(
    flow: Generator[Send | Sleep, Outcome, httpx.Response], outcomes: list[Outcome]
) -> tuple[list[Send | Sleep], httpx.Response]:
    """Feed ``outcomes`` to a retry flow; return the steps it took and its result."""
    steps: list[Send | Sleep] = []
    reply: Outcome = None
    pending = list(outcomes)
    while True:
        try:
            step = flow.send(reply)
        except StopIteration as stop:
            return steps, stop.value
        steps.append(step)
        reply = pending.pop(0) if isinstance(step, Send) else None


# -- retry flow ----------------------------------------------------------------------------


def test_backoff_doubles_caps_and_jitters() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=3.0, jitter=0.5)
    assert [policy.backoff(n, rand=0.0) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.backoff(1, rand=0.5) == pytest.approx(0.75)
    assert policy.backoff(1, rand=0.999) > 0.5


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"initial_delay": -1.0}, {"jitter": 1.5}, {"max_retry_after": -2.0}],
)
def test_retry_policy_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_retry_flow_sleeps_then_returns_the_good_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = httpx.Request("GET", URL)
    flow = retry_flow(request, policy=RetryPolicy(initial_delay=1.0), random=lambda: 0.0)
    bad, good = _response(request, 503), _response(request, 200, json={})
    with caplog.at_level("INFO", logger="protocol_lab.client"):
        steps, result = _drive(flow, [bad, good])
    assert steps == [Send(request), Sleep(1.0), Send(request)]
    assert result is good
    assert "retrying GET http://api.test/v1/workflows in 1.00s (retry 1 of 3)" in caplog.text


def test_retry_flow_uses_retry_after_dates() -> None:
    request = httpx.Request("GET", URL)
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(7.0)
    assert parse_retry_after(" 12 ") == 12.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    flow = retry_flow(request, policy=RetryPolicy(), random=lambda: 0.0)
    steps, _ = _drive(
        flow, [_response(request, 429, headers={"Retry-After": "0"}), _response(request, 200)]
    )
    assert steps == [Send(request), Send(request)]  # a zero wait is no sleep at all


def test_non_replayable_requests_are_retried_only_when_not_sent() -> None:
    request = httpx.Request("PATCH", URL)
    flow = retry_flow(request, policy=RetryPolicy(), random=lambda: 0.0)
    steps, result = _drive(flow, [_response(request, 503)])
    assert result.status_code == 503
    assert len(steps) == 1
    flow = retry_flow(request, policy=RetryPolicy(), random=lambda: 0.0)
    with pytest.raises(ApiTimeoutError) as info:
        _drive(flow, [httpx.ReadTimeout("slow", request=request)])
    assert info.value.request is request
    flow = retry_flow(request, policy=RetryPolicy(), random=lambda: 0.0)
    connect = httpx.ConnectError("refused", request=request)
    steps, result = _drive(flow, [connect, _response(request, 200)])
    assert [type(s) for s in steps] == [Send, Sleep, Send]


def test_keyed_posts_are_replayable_and_501_is_final() -> None:
    keyed = httpx.Request("POST", URL, headers={"Idempotency-Key": "k"})
    flow = retry_flow(keyed, policy=RetryPolicy(), random=lambda: 0.0)
    steps, _ = _drive(flow, [httpx.ReadError("reset", request=keyed), _response(keyed, 200)])
    assert len([s for s in steps if isinstance(s, Send)]) == 2
    bare = httpx.Request("POST", URL)
    flow = retry_flow(bare, policy=RetryPolicy(), random=lambda: 0.0)
    steps, result = _drive(flow, [_response(bare, 500)])
    assert (len(steps), result.status_code) == (1, 500)
    flow = retry_flow(keyed, policy=RetryPolicy(), random=lambda: 0.0)
    steps, result = _drive(flow, [_response(keyed, 501)])
    assert (len(steps), result.status_code) == (1, 501)


def test_transport_errors_map_to_request_errors() -> None:
    request = httpx.Request("GET", URL)
    flow = retry_flow(request, policy=RetryPolicy(max_retries=0), random=lambda: 0.0)
    with pytest.raises(ApiRequestError) as info:
        _drive(flow, [httpx.RemoteProtocolError("garbage", request=request)])
    assert type(info.value) is ApiRequestError
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)
    assert "GET http://api.test/v1/workflows" in str(info.value)
    flow = retry_flow(request, policy=RetryPolicy(), random=lambda: 0.0)
    with pytest.raises(ApiRequestError) as info:  # a body that cannot be decoded: not retried
        _drive(flow, [httpx.DecodingError("bad gzip", request=request)])
    assert isinstance(info.value.__cause__, httpx.DecodingError)


# -- pagination flow -----------------------------------------------------------------------


def _page(ids: list[str], *, has_more: bool) -> dict[str, object]:
    return {"has_more": has_more, "data": [{"id": i} for i in ids]}


def test_cursor_flow_forwards() -> None:
    flow = cursor_flow({"status": "active", "task_queue": None}, page_size=2)
    assert next(flow) == Fetch({"status": "active", "limit": 2})
    assert flow.send(_page(["a", "b"], has_more=True)) == Emit([{"id": "a"}, {"id": "b"}])
    assert flow.send(None) == Fetch({"status": "active", "limit": 2, "starting_after": "b"})
    assert flow.send(_page(["c"], has_more=False)) == Emit([{"id": "c"}])
    with pytest.raises(StopIteration):
        flow.send(None)


def test_cursor_flow_backwards_and_empty_pages() -> None:
    flow = cursor_flow(page_size=2, ending_before="e")
    assert next(flow) == Fetch({"limit": 2, "ending_before": "e"})
    assert flow.send(_page(["c", "d"], has_more=True)) == Emit([{"id": "d"}, {"id": "c"}])
    assert flow.send(None) == Fetch({"limit": 2, "ending_before": "c"})
    with pytest.raises(StopIteration):
        flow.send(_page([], has_more=True))


def test_cursor_flow_checks_arguments_and_pages() -> None:
    with pytest.raises(ValueError, match="not both"):
        cursor_flow(starting_after="a", ending_before="b")
    with pytest.raises(ValueError, match="page_size"):
        cursor_flow(page_size=0)
    bad: object
    for bad in ([], {"data": []}, {"has_more": False, "data": [{"name": "no id"}]}):
        flow = cursor_flow()
        next(flow)
        with pytest.raises(PaginationError):
            flow.send(bad)  # type: ignore[arg-type]
    flow = cursor_flow(starting_after="a")
    next(flow)
    flow.send(_page(["a"], has_more=True))
    with pytest.raises(PaginationError, match="did not advance"):
        flow.send(None)


# -- error mapping -------------------------------------------------------------------------


def test_error_tree() -> None:
    assert issubclass(ApiError, ProtocolLabError)
    assert issubclass(ApiTimeoutError, ApiRequestError)
    for cls in (InvalidRequestError, NotFoundError, ConflictError, RateLimitError, ApiServerError):
        assert issubclass(cls, ApiStatusError)
    assert not issubclass(ApiStatusError, ApiRequestError)


@pytest.mark.parametrize(
    ("status", "body", "cls", "type_", "message"),
    [
        (404, {"type": "not_found", "message": "no wf"}, NotFoundError, "not_found", "no wf"),
        (400, {"type": "conflict", "message": "x"}, ConflictError, "conflict", "x"),
        (422, {"detail": [{"loc": ["body", "name"]}]}, InvalidRequestError, None, None),
        (418, {"message": "teapot"}, ApiStatusError, None, "teapot"),
        (429, {"type": "rate_limited", "message": "slow"}, RateLimitError, "rate_limited", "slow"),
        (503, {"type": "api_error", "message": "down"}, ApiServerError, "api_error", "down"),
        (502, "<html>bad gateway</html>", ApiServerError, None, "<html>bad gateway</html>"),
    ],
)
def test_status_errors_follow_type_then_status(
    status: int, body: object, cls: type[ApiStatusError], type_: str | None, message: str | None
) -> None:
    request = httpx.Request("GET", URL)
    kwargs = {"text": body} if isinstance(body, str) else {"json": body}
    error = status_error_from(_response(request, status, **kwargs))
    assert type(error) is cls
    assert error.status_code == status
    assert error.type == type_
    assert error.request is request
    if message is not None:
        assert error.message == message
    else:
        assert "name" in error.message
