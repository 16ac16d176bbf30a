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

#: public name -> the module that defines it, imported on first use (PEP 562).
_LAZY = {
    "Embedder": "tinydancer_duck.embed",
    "HashingEmbedder": "tinydancer_duck.embed",
    "StaticEmbedder": "tinydancer_duck.embed",
    "make_embedder": "tinydancer_duck.embed",
    "Engine": "tinydancer_duck.engine",
    "connect": "tinydancer_duck.engine",
    "RouteClassifier": "tinydancer_duck.learn",
    "TrainReport": "tinydancer_duck.learn",
    "train_classifier": "tinydancer_duck.learn",
    "aiq": "tinydancer_duck.replay",
    "budget_whatif": "tinydancer_duck.replay",
    "curve": "tinydancer_duck.replay",
    "simulate": "tinydancer_duck.replay",
    "IngestReport": "tinydancer_duck.usage",
    "RoutingSnapshot": "tinydancer_duck.snapshot",
    "classify_batch": "tinydancer_duck.distributed",
    "ray_route": "tinydancer_duck.distributed",
    "route_batch": "tinydancer_duck.distributed",
    "semantic_route_batch": "tinydancer_duck.distributed",
    "spark_route": "tinydancer_duck.distributed",
}

__all__ = [
    "Embedder",
    "Engine",
    "HashingEmbedder",
    "IngestReport",
    "InvalidArgument",
    "ModelError",
    "NotFound",
    "RouteClassifier",
    "RoutingSnapshot",
    "Settings",
    "StaticEmbedder",
    "StoreError",
    "TinydancerError",
    "TrainReport",
    "aiq",
    "budget_whatif",
    "classify_batch",
    "connect",
    "curve",
    "make_embedder",
    "ray_route",
    "route_batch",
    "semantic_route_batch",
    "simulate",
    "spark_route",
    "train_classifier",
]


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
    from tinydancer_duck.replay import aiq, budget_whatif, curve, simulate
    from tinydancer_duck.snapshot import RoutingSnapshot
    from tinydancer_duck.usage import IngestReport
