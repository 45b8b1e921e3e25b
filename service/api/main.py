"""The API's router: includes one router per resource, nothing else."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["api_router"]

api_router = APIRouter(prefix="/v1")
