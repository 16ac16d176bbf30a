"""tinydancer_duck: route AI requests to agents with vectorized DuckDB SQL functions, backed by LanceDB.

>>> import tinydancer_duck as td
>>> con = td.connect("/tmp/store")
>>> con.sql("SELECT * FROM ruvector_route(request := 'Write a haiku', optimize_for := 'cost')")

The SQL surface and the Python API (:class:`Engine` and the functions below) call the same code.
"""

from .classifier import RouteClassifier
from .classifier_store import TrainReport, train_classifier
from .connect import connect
from .curves import aiq, curve
from .embed import Embedder, HashingEmbedder, StaticEmbedder, make_embedder
from .engine import Engine
from .errors import InvalidArgument, ModelError, NotFound, StoreError, TinydancerError
from .settings import Settings
from .simulate import simulate
from .usage import IngestReport
from .whatif import budget_whatif

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
