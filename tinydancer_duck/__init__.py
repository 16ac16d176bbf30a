"""tinydancer_duck: route AI requests to agents with vectorized DuckDB SQL functions, backed by LanceDB.

>>> import tinydancer_duck as td
>>> con = td.connect("/tmp/store")
>>> con.sql("SELECT * FROM ruvector_route(request := 'Write a haiku', optimize_for := 'cost')")
"""

from .connect import connect
from .embed import Embedder, HashingEmbedder, StaticEmbedder, make_embedder
from .engine import Engine
from .errors import InvalidArgument, ModelError, NotFound, StoreError, TinydancerError
from .settings import Settings

__all__ = [
    "Embedder",
    "Engine",
    "HashingEmbedder",
    "InvalidArgument",
    "ModelError",
    "NotFound",
    "Settings",
    "StaticEmbedder",
    "StoreError",
    "TinydancerError",
    "connect",
    "make_embedder",
]
__version__ = "0.1.0"
