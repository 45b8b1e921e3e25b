"""protocol_lab.client exports exactly its public names, and they are the documented ones."""

from __future__ import annotations

import inspect
import typing

import protocol_lab.client as client_module
from protocol_lab._client import _errors


def test_all_public_members_are_exported() -> None:
    public = {
        name
        for name in vars(client_module)
        if not name.startswith("_") and name != "annotations"  # the __future__ feature
    }
    assert public == set(client_module.__all__)
    assert len(client_module.__all__) == len(set(client_module.__all__))


def test_the_twins_and_the_error_tree_are_exported() -> None:
    exported = set(client_module.__all__)
    assert {"Client", "AsyncClient", "RetryPolicy"} <= exported
    assert set(_errors.__all__) - {"request_error_from", "status_error_from"} <= exported


def test_sync_and_async_twins_offer_the_same_endpoints() -> None:
    def public_methods(cls: type) -> set[str]:
        return {n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))}

    sync = public_methods(client_module.Client)
    asynchronous = public_methods(client_module.AsyncClient)
    renamed = {"close": "aclose", "paginate": "apaginate"}
    expected = {renamed.get(n, "a" + n if n.startswith("iter_") else n) for n in sync}
    assert expected == asynchronous
    for name in ("iter_workflows", "iter_rules", "iter_tickets", "iter_rule_executions"):
        assert name in sync
        assert "a" + name in asynchronous


def test_twin_methods_take_the_same_parameters() -> None:
    renamed = {"close": "aclose", "paginate": "apaginate"}
    for name, member in vars(client_module.Client).items():
        if name.startswith("_") or not callable(member):
            continue
        twin_name = renamed.get(name, "a" + name if name.startswith("iter_") else name)
        twin = getattr(client_module.AsyncClient, twin_name)
        sync_params = inspect.signature(member).parameters
        async_params = inspect.signature(twin).parameters
        assert list(sync_params) == list(async_params), name
        for param in sync_params.values():
            other = async_params[param.name]
            assert (param.kind, param.default) == (other.kind, other.default), (name, param.name)


def _mentions_a_model(annotation: object) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, client_module.ApiModel):
        return True
    return any(_mentions_a_model(arg) for arg in typing.get_args(annotation))


def test_every_endpoint_method_answers_a_model() -> None:
    raw_by_design = {"request", "paginate", "send", "build_request", "new_idempotency_key"}
    for twin in (client_module.Client, client_module.AsyncClient):
        for name, member in vars(twin).items():
            if name.startswith("_") or not inspect.isfunction(member):
                continue
            if name in raw_by_design | {"apaginate", "close", "aclose"}:
                continue
            answer = typing.get_type_hints(member)["return"]
            assert _mentions_a_model(answer), f"{twin.__name__}.{name} answers {answer}"


def test_every_model_is_exported() -> None:
    from protocol_lab._client.models import MODELS

    exported = set(client_module.__all__)
    assert {m.__name__ for m in MODELS} <= exported
    assert {"Page", "AsyncPage", "PageData", "ApiModel", "WorkflowState"} <= exported
