"""The sync client is generated from the async one, and the generation is current."""

from __future__ import annotations

import ast

from protocol_lab._client import _unasync
from protocol_lab._client._unasync import ASYNC_SOURCE, SYNC_TARGET, generate, unasync


def test_the_committed_sync_twin_is_the_generated_one() -> None:
    assert SYNC_TARGET.read_text(encoding="utf-8") == generate()
    assert _unasync.main(["--check"]) == 0


def test_the_generated_twin_has_no_async_left() -> None:
    tree = ast.parse(generate())
    kinds = (ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith)
    assert [type(node).__name__ for node in ast.walk(tree) if isinstance(node, kinds)] == []
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not {n for n in names if n.startswith("Async") or n == "asyncio"}


def test_a_change_to_the_async_source_changes_the_twin() -> None:
    source = ASYNC_SOURCE.read_text(encoding="utf-8")
    changed = source.replace(
        "    async def get_ticket(self, ticket_id: str) -> Ticket:",
        "    async def get_ticket(self, ticket_id: str, *, expand: bool = False) -> Ticket:",
    )
    assert changed != source
    assert "def get_ticket(self, ticket_id: str, *, expand: bool = False) -> Ticket:" in (
        unasync(changed)
    )
    assert unasync(changed) != unasync(source)


def test_unasync_rewrites_the_async_vocabulary() -> None:
    source = (
        "import asyncio\n"
        "class AsyncPage:\n"
        "    async def __aiter__(self) -> AsyncIterator[int]:\n"
        "        async for x in self.aiter_items():\n"
        "            yield await asyncio.sleep(x)\n"
        "    async def aclose(self) -> None:\n"
        "        async with httpx.AsyncClient() as c:\n"
        "            await c.aclose()\n"
        "    f: Callable[[Awaitable[dict[str, int]], int], Awaitable[None]]\n"
    )
    assert unasync(source).splitlines()[1:] == [
        "import time",
        "class Page:",
        "    def __iter__(self) -> Iterator[int]:",
        "        for x in self.iter_items():",
        "            yield time.sleep(x)",
        "    def close(self) -> None:",
        "        with httpx.Client() as c:",
        "            c.close()",
        "    f: Callable[[dict[str, int], int], None]",
    ]
