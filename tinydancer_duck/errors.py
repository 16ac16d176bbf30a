"""The package's one exception tree.

::

    TinydancerError
    ├── InvalidArgument (also ValueError)  a user argument is wrong; names the argument and the value
    ├── NotFound (also KeyError)           a named agent, route or model does not exist
    ├── StoreError                         LanceDB failed or the store is inconsistent
    └── ModelError                         a model cannot be loaded or does not fit the embedder

DuckDB keeps only the text of an exception raised inside a UDF, so every message names the argument and the value.
"""

from __future__ import annotations

from typing import Any


class TinydancerError(Exception):
    """Root of every error this package raises."""


class InvalidArgument(TinydancerError, ValueError):
    """A caller passed a bad value; the message names the argument and the value."""

    def __init__(self, argument: str, value: Any, why: str) -> None:
        self.argument = argument
        self.value = value
        super().__init__(f"invalid {argument}={_show(value)}: {why}")


class NotFound(TinydancerError, KeyError):
    """A named object (agent, route, model) is not in the store."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} {name!r} not found")

    def __str__(self) -> str:  # KeyError would quote the whole message again
        return str(self.args[0])


class StoreError(TinydancerError):
    """The LanceDB store failed, or holds data this version cannot use."""


class ModelError(TinydancerError):
    """A model cannot be loaded, or does not match the active embedder."""


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
