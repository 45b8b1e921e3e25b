"""The HTTP API: one router per resource (``workflows``, ...), dependencies, errors."""

__all__: list[str] = []
