"""tinydancer_duck: route AI requests to agents with vectorized DuckDB SQL functions, backed by LanceDB.

>>> import tinydancer_duck as td
>>> con = td.connect("/tmp/store")
>>> con.sql("SELECT * FROM ruvector_route(request := 'Write a haiku', optimize_for := 'cost')")

The SQL surface and the Python API (:class:`Engine` and the functions below) call the same code. This module is
the one public face: every name a user needs is here, and none of them is imported until it is first used, so
``import tinydancer_duck`` (a worker, ``tinydancer --help``) loads neither duckdb, lancedb nor polars.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from tinydancer_duck.errors import InvalidArgument, ModelError, NotFound, StoreError, TinydancerError
from tinydancer_duck.settings import Settings

__version__ = "0.1.0"

#: The public names, by the module that defines them; each is imported on first use (PEP 562). The one list:
#: ``__all__`` is derived from it and tests/test_layout.py checks the TYPE_CHECKING imports below against it.
_LAZY_BY_MODULE = {
    "tinydancer_duck.embed": ("Embedder", "HashingEmbedder", "StaticEmbedder", "make_embedder"),
    "tinydancer_duck.engine": ("Engine", "connect"),
    "tinydancer_duck.learn": ("RouteClassifier", "TrainReport", "train_classifier"),
    "tinydancer_duck.options": ("FastGRNNConfig", "OutcomeModelConfig", "Policy", "RouteOptions"),
    "tinydancer_duck.replay": ("aiq", "budget_whatif", "curve", "simulate"),
    "tinydancer_duck.usage": ("IngestReport",),
    "tinydancer_duck.snapshot": ("RoutingSnapshot",),
    "tinydancer_duck.distributed": ("classify_batch", "ray_route", "route_batch", "semantic_route_batch",
                                    "spark_route"),
}
_LAZY = {name: module for module, names in _LAZY_BY_MODULE.items() for name in names}
_EAGER = ("InvalidArgument", "ModelError", "NotFound", "Settings", "StoreError", "TinydancerError")
__all__ = sorted((*_EAGER, *_LAZY))


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tinydancer_duck' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names resolve lazily above
    from tinydancer_duck.distributed import classify_batch, ray_route, route_batch, semantic_route_batch, spark_route
    from tinydancer_duck.embed import Embedder, HashingEmbedder, StaticEmbedder, make_embedder
    from tinydancer_duck.engine import Engine, connect
    from tinydancer_duck.learn import RouteClassifier, TrainReport, train_classifier
    from tinydancer_duck.options import FastGRNNConfig, OutcomeModelConfig, Policy, RouteOptions
    from tinydancer_duck.replay import aiq, budget_whatif, curve, simulate
    from tinydancer_duck.snapshot import RoutingSnapshot
    from tinydancer_duck.usage import IngestReport
