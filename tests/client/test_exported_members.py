"""protocol_lab.client exports exactly its public names, and they are the documented ones."""

from __future__ import annotations

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
