"""The distributed room: routing as a pure Arrow batch -> batch function of a RoutingSnapshot, and adapters that
map it over a log with an existing engine (Ray Data, Spark) or in this process. No home-made cluster, no global
connection: a worker needs the snapshot and the batch, and imports only numpy and pyarrow (plus the engine).

May import: _decide, snapshot, routing, semantic, learn, embed (kernels only) and ground. ray and pyspark are
imported inside the adapters' functions (extras ``[ray]``, ``[spark]``).
"""

from ._batch import (
    CLASSIFY_FIELDS,
    SEMANTIC_FIELDS,
    as_record_batch,
    check_route_options,
    classify_batch,
    route_batch,
    semantic_route_batch,
)
from ._parquet import ENGINES, RouteReport, read_routed, route_parquet
from ._ray import ray_route
from ._spark import local_session, spark_route

__all__ = [
    "CLASSIFY_FIELDS",
    "ENGINES",
    "SEMANTIC_FIELDS",
    "RouteReport",
    "as_record_batch",
    "check_route_options",
    "classify_batch",
    "local_session",
    "ray_route",
    "read_routed",
    "route_batch",
    "route_parquet",
    "semantic_route_batch",
    "spark_route",
]
