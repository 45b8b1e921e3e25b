"""Optional parts of the distribution: which extra a feature needs, and whether it is installed.

The base install is the library (analytics, simulation, client, replay). The service and a few
library functions need more, installed as extras of the ``protocol-lab`` distribution:

- ``temporal``: ``temporalio``, for the library functions that read histories from Temporal
  (``Timelines.from_temporal``, the history mapper, ``load_replayed(temporal_address=...)``);
- ``service``: the API, the worker and the embedded stack (and the triage model's
  scikit-learn, which the worker's ai-inference queue trains on first use).

Nothing here imports an extra: a function that needs one imports it inside itself and turns the
``ImportError`` into :class:`MissingExtraError`, which names the extra to install.
"""

from __future__ import annotations

from importlib import metadata

from protocol_lab.domain.errors import ProtocolLabError

__all__ = ["DISTRIBUTION", "MissingExtraError", "install_hint", "missing_requirements"]

DISTRIBUTION = "protocol-lab"


def install_hint(extra: str) -> str:
    """The command that installs ``extra``: ``pip install 'protocol-lab[service]'``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


class MissingExtraError(ProtocolLabError, ImportError):
    """A feature needs an extra of the distribution that is not installed.

    ``extra`` names it; the message says what needed it and how to install it.
    """

    def __init__(self, extra: str, needed_by: str, missing: str | None = None) -> None:
        self.extra = extra
        lacking = f" ({missing} is not installed)" if missing else ""
        super().__init__(
            f"{needed_by} needs the '{extra}' extra{lacking}: {install_hint(extra)}",
            name=missing,
        )


def missing_requirements(extra: str) -> list[str]:
    """The distributions that ``extra`` requires on this platform and that are not installed.

    Read from the installed distribution's metadata; empty when the extra is complete, or when
    protocol-lab runs from a source tree that was never installed (nothing to compare with).
    """
    from packaging.requirements import Requirement

    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return []
    missing: list[str] = []
    for line in requirements:
        requirement = Requirement(line)
        marker = requirement.marker
        # a base requirement may carry a platform marker too: only those naming an extra count
        if marker is None or "extra" not in str(marker) or not marker.evaluate({"extra": extra}):
            continue
        try:
            metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(requirement.name)
    return missing
