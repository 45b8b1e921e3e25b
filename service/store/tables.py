"""Imports every table module so ``Base.metadata`` knows them all (used by ``create_schema``)."""

from __future__ import annotations

import importlib
import pkgutil

import service.store as _store

__all__: list[str] = []

# Each module of the store that defines tables is imported here; modules without tables are
# harmless to import.
for _info in pkgutil.iter_modules(_store.__path__):
    if _info.name not in {"tables", "db"}:
        importlib.import_module(f"service.store.{_info.name}")
