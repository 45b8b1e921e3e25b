"""The shipped sample of workflow timelines, for notebooks and examples.

A module of its own so that only code that asks for the sample finds its path (through
``importlib.resources`` in an installed wheel): the analyses never need it.
"""

from protocol_lab.domain.paths import SAMPLE_PATH

__all__ = ["SAMPLE_PATH"]
