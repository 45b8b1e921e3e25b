"""Rule templates: ``{{ticket.<field>}}`` and ``{field}`` placeholders of known names only,
bounded output, checked on save."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from protocol_lab.domain import Rule, RuleError
from protocol_lab.domain.templates import (
    MAX_RENDERED_CHARS,
    TemplateError,
    render_template,
    template_values,
    validate_template,
)
from service.automation.engine import describe_action
from service.store.rules import RuleRow, rule_model

TICKET = {"id": "TKT-1", "ticket_id": "TKT-1", "title": "VPN down", "priority": "P1"}
VALUES = template_values(TICKET, rule_id="rule_x", rule_name="Escalate")


def test_both_placeholder_forms_are_substituted_and_lone_double_braces_are_literal() -> None:
    text = "{{ticket.id}} ({{ ticket.priority }}): {title} by {{rule.name}} }} {{"
    validate_template(text)
    assert render_template(text, VALUES) == "TKT-1 (P1): VPN down by Escalate } {"
    # A known placeholder without a value stays as written.
    assert render_template("{{ticket.assignee}}", VALUES) == "{{ticket.assignee}}"


@pytest.mark.parametrize(
    "template", ["{{ticket.shoe_size}}", "{{ title }}", "{{rule.owner}}", "{unknown}"]
)
def test_an_unknown_placeholder_is_refused_by_name(template: str) -> None:
    with pytest.raises(TemplateError, match="unknown placeholder") as refused:
        validate_template(f"Alert: {template}")
    assert repr(template) in str(refused.value)
    assert render_template(f"Alert: {template}", VALUES) == f"Alert: {template}"


@pytest.mark.parametrize(
    "template",
    ["{title:>2000000000}", "{title.x}", "{title[0]}", "{title!r}", "{0}", "{}", "{ title}"],
)
def test_anything_but_a_plain_field_is_refused_and_rendered_verbatim(template: str) -> None:
    with pytest.raises(TemplateError, match="placeholder") as refused:
        validate_template(f"Alert: {template}")
    assert repr(template) in str(refused.value)
    assert isinstance(refused.value, RuleError)
    assert render_template(f"Alert: {template}", VALUES) == f"Alert: {template}"


@pytest.mark.parametrize("template", ["{title", "title}", "a } b"])
def test_a_lone_brace_is_refused(template: str) -> None:
    with pytest.raises(TemplateError, match="unmatched"):
        validate_template(template)


def test_the_output_is_bounded() -> None:
    rendered = render_template("{title}" * 2000, {"ticket.title": "x" * 1000})
    assert len(rendered) == MAX_RENDERED_CHARS
    assert rendered.endswith("…")
    assert len(render_template("{{ticket.title}}!", {"ticket.title": "ab"}, limit=2)) == 2
    with pytest.raises(TemplateError, match="longer than"):
        validate_template("x" * 5000)


def _notify(message: str, subject: str | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {
        "type": "send_notification",
        "recipient": "ops",
        "message": message,
    }
    if subject is not None:
        action["subject"] = subject
    return {
        "name": "Template probe",
        "trigger": "on_ticket_created",
        "action": action,
        "enabled": False,
    }


def test_the_rule_model_refuses_a_bad_template() -> None:
    with pytest.raises(ValueError, match=r"'\{title\.x\}'"):
        Rule.model_validate(_notify("{title.x}"))
    with pytest.raises(ValueError, match="subject"):
        Rule.model_validate(_notify("ok", subject="{title:>2000000000}"))


def test_a_rule_stored_before_the_check_still_loads_and_renders_verbatim() -> None:
    action = _notify("Alert {title:>2000000000} on {ticket_id}")["action"]
    row = RuleRow(
        id="rule_legacy",
        name="Stored before templates were checked",
        trigger="on_ticket_created",
        conditions="{}",
        action=json.dumps(action),
        enabled=True,
        created_at=0.0,
        updated_at=0.0,
    )
    rule = rule_model(row)
    described = describe_action(rule, ticket={"id": "TKT-4", "title": "Disk full"})
    assert described["message"] == "Alert {title:>2000000000} on TKT-4"


@pytest.mark.temporal
@pytest.mark.redis
async def test_saving_a_bad_template_is_a_400_naming_the_placeholder(
    api: httpx.AsyncClient, read_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    r = await api.post("/v1/automation/rules", headers=write_headers, json=_notify("{title.x}"))
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "invalid_request"
    assert "action.message" in r.json()["message"]
    assert "'{title.x}'" in r.json()["message"]

    r = await api.post("/v1/automation/rules", headers=write_headers, json=_notify("On {title}"))
    assert r.status_code == 201, r.text
    rule_id = r.json()["id"]
    r = await api.patch(
        f"/v1/automation/rules/{rule_id}",
        headers=write_headers,
        json={"action": _notify("ok", subject="{title:>2000000000}")["action"]},
    )
    assert r.status_code == 400, r.text
    assert "action.subject" in r.json()["message"]
    assert "'{title:>2000000000}'" in r.json()["message"]

    r = await api.post(
        f"/v1/automation/rules/{rule_id}/test",
        headers=read_headers,
        json={"ticket": {"id": "TKT-9", "title": "Printer jam"}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["action"]["message"] == "On Printer jam"
