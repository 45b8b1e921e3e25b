"""A workflow's timeline from its Temporal history: the library's mapper, re-exported.

The mapping lives in :mod:`protocol_lab.domain.history`, shared by the API, the archive, the
analytics and replay.
"""

from __future__ import annotations

from protocol_lab.domain.history import HistoryTimeline, build_timeline, started_detail

__all__ = ["HistoryTimeline", "build_timeline", "started_detail"]
