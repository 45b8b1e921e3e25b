"""The typed answers: models keep the JSON as received, refuse answers of another shape, and
the comparison with the OpenAPI document catches every kind of drift."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import httpx
import pytest

from protocol_lab.client import (
    ApiDecodeError,
    AsyncClient,
    AsyncPage,
    Client,
    Page,
    PaginationError,
    Rule,
    SignalResult,
    StartWorkflowAction,
    TimelineEntry,
    Workflow,
    WorkflowState,
)
from protocol_lab.domain.timeline import EventType
from service.app import create_app

from .fake_api import FakeApi
from .openapi_shapes import differences


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    """The component schemas of the service's OpenAPI document (the app is only built)."""
    spec: dict[str, Any] = create_app().openapi()
    return spec["components"]["schemas"]


def test_a_model_keeps_the_answer_as_received(client: Client, fake: FakeApi) -> None:
    (wf_id,) = fake.seed_workflows(1)
    fake.workflows[wf_id]["timeline"] = [{"event": "workflow_started", "timestamp": 5}]
    fake.workflows[wf_id]["cost_center"] = "CC-7"  # a field this client does not know
    wf = client.get_workflow(wf_id)
    assert isinstance(wf, Workflow)
    assert wf.status is WorkflowState.ACTIVE
    assert wf.timeline == [TimelineEntry(event=EventType.WORKFLOW_STARTED, timestamp=5)]
    assert type(wf.timeline[0].timestamp) is int
    assert wf.raw == fake.workflows[wf_id]  # unknown keys, absent keys: as sent
    assert wf.model_extra == {"cost_center": "CC-7"}
    assert "ticket_id" not in wf.raw
    assert wf.ticket_id is None


def test_an_answer_of_another_shape_is_a_decode_error(client: Client, fake: FakeApi) -> None:
    (wf_id,) = fake.seed_workflows(1)
    fake.workflows[wf_id]["status"] = "sleeping"
    with pytest.raises(ApiDecodeError, match=r"not a Workflow: status") as info:
        client.get_workflow(wf_id)
    assert info.value.response.json()["status"] == "sleeping"  # the raw answer stays reachable
    del fake.workflows[wf_id]["timeline"]
    fake.workflows[wf_id]["status"] = "active"
    with pytest.raises(ApiDecodeError, match=r"PageData\[Workflow\]: data\.0\.timeline"):
        client.list_workflows()


def test_dict_style_reads_still_work_with_a_deprecation_warning(
    client: Client, fake: FakeApi
) -> None:
    (wf_id,) = fake.seed_workflows(1)
    answer = client.signal_workflow(wf_id, signal_name="approval_received")
    assert isinstance(answer, SignalResult)
    with pytest.warns(DeprecationWarning, match=r"use the attribute \(\.accepted\)"):
        assert answer["accepted"] is True
    with pytest.warns(DeprecationWarning, match="missing"):
        assert answer.get("missing", "default") == "default"
    with pytest.warns(DeprecationWarning, match="reason"):
        assert "reason" in answer  # not silently False
    page = client.list_workflows()
    with pytest.warns(DeprecationWarning, match="Page"):
        assert page["data"][0]["id"] == wf_id
    with pytest.warns(DeprecationWarning, match="has_more"):
        assert "has_more" in page


def test_a_sync_page_walks_on_across_pages(client: Client, fake: FakeApi) -> None:
    ids = fake.seed_workflows(7)
    page = client.list_workflows(limit=3)
    assert isinstance(page, Page)
    assert [w.id for w in page.data] == ids[:3]
    assert (page.has_more, page.next_cursor) == (True, ids[2])
    assert [w.id for w in page] == ids
    assert [w.id for w in page] == ids  # a page can be walked again
    back = client.list_workflows(limit=2, ending_before=ids[4])
    assert [w.id for w in back] == [ids[3], ids[2], ids[1], ids[0]]
    # the first page, two more per walk, the backward page and the one before it
    assert len(fake.requests_to("GET", "/v1/workflows")) == 1 + 2 + 2 + 1 + 1
    assert repr(page) == "Page(items=3, has_more=True)"


async def test_an_async_page_walks_on_and_stops_at_the_end(
    aclient: AsyncClient, fake: FakeApi
) -> None:
    ids = fake.seed_workflows(5)
    page = await aclient.list_workflows(limit=2)
    assert isinstance(page, AsyncPage)
    assert [w.id async for w in page] == ids
    nxt = await page.next_page()
    assert nxt is not None
    last = await nxt.next_page()
    assert last is not None
    assert ([w.id for w in last.data], last.has_more, last.next_cursor) == ([ids[4]], False, None)
    assert await last.next_page() is None


def test_a_page_that_does_not_advance_is_refused(fake: FakeApi) -> None:
    (wf_id,) = fake.seed_workflows(1)
    stuck = {"has_more": True, "data": [fake.workflows[wf_id]]}  # a server ignoring cursors

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=stuck)

    transport = httpx.MockTransport(answer)
    with Client(base_url="http://api.test", token="t", transport=transport) as api:
        seen = []
        with pytest.raises(PaginationError, match="did not advance"):
            seen.extend(w.id for w in api.list_workflows(limit=1))
    assert seen == [wf_id, wf_id]


def test_every_model_agrees_with_the_built_document(schemas: dict[str, Any]) -> None:
    from protocol_lab._client.models import MODELS

    assert {m.__name__: differences(m, schemas[m.openapi_schema], schemas) for m in MODELS} == {
        m.__name__: [] for m in MODELS
    }


def test_the_comparison_catches_each_kind_of_drift(schemas: dict[str, Any]) -> None:
    class Missing(SignalResult):
        openapi_schema: ClassVar[str] = "SignalResult"
        extra_field: int

    class WrongEnum(SignalResult):
        status: Literal["draft", "active"]  # type: ignore[assignment]

    class WrongRequired(SignalResult):
        current_step: str | None = None

    class WrongType(SignalResult):
        accepted: int  # type: ignore[assignment]

    served = schemas["SignalResult"]
    assert differences(Missing, served, schemas) == [
        "Missing.extra_field: in the model, not served"
    ]
    drop = {k: v for k, v in served["properties"].items() if k != "reason"}
    assert differences(SignalResult, {**served, "properties": drop}, schemas) == [
        "SignalResult.reason: in the model, not served"
    ]
    (enum,) = differences(WrongEnum, served, schemas)
    assert enum.startswith("WrongEnum.status: model ('enum'")
    assert differences(WrongRequired, served, schemas) == [
        "WrongRequired.current_step: served as required, the model disagrees"
    ]
    (kind,) = differences(WrongType, served, schemas)
    assert kind == "WrongType.accepted: model 'integer' != served 'boolean'"


def test_the_comparison_names_the_nested_field_that_drifted(schemas: dict[str, Any]) -> None:
    class LaxStart(StartWorkflowAction):
        type: Literal["start_workflow"] = "start_workflow"

    class OneActionRule(Rule):
        action: LaxStart | None = None

    start = "object{input,task_queue,trigger_type,type,workflow_name}"
    assert differences(OneActionRule, schemas["RulePublic"], schemas) == [
        f"OneActionRule.action<{start}>.type: served as required, the model disagrees",
        "OneActionRule.action: alternatives only in the model [], only served "
        "['object{channel,message,recipient,subject,type}', 'object{field,type,value}']",
    ]
