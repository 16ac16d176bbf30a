"""tinydancer_duck: route AI requests to agents with vectorized DuckDB SQL functions, backed by LanceDB.

>>> import tinydancer_duck as td
>>> con = td.connect("/tmp/store")
>>> con.sql("SELECT * FROM ruvector_route(request := 'Write a haiku', optimize_for := 'cost')")

The SQL surface and the Python API (:class:`Engine` and the functions below) call the same code.
"""

from tinydancer_duck.embed import Embedder, HashingEmbedder, StaticEmbedder, make_embedder
from tinydancer_duck.engine import Engine, connect
from tinydancer_duck.errors import InvalidArgument, ModelError, NotFound, StoreError, TinydancerError
from tinydancer_duck.learn import RouteClassifier, TrainReport, train_classifier
from tinydancer_duck.replay import aiq, budget_whatif, curve, simulate
from tinydancer_duck.settings import Settings
from tinydancer_duck.usage import IngestReport

__all__ = [
    "Embedder",
    "Engine",
    "HashingEmbedder",
    "IngestReport",
    "InvalidArgument",
    "ModelError",
    "NotFound",
    "RouteClassifier",
    "Settings",
    "StaticEmbedder",
    "StoreError",
    "TinydancerError",
    "TrainReport",
    "aiq",
    "budget_whatif",
    "connect",
    "curve",
    "make_embedder",
    "simulate",
    "train_classifier",
]
__version__ = "0.1.0"
