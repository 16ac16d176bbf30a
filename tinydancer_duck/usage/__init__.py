"""The usage room: usage events (record, ingest), analytics and the circuit-breaker health derived from them.

May import: registry, store, ground.
"""

from ._analytics import ANALYTICS_TYPE, STATS_TYPE, Analytics
from ._events import DEFAULT_BATCH_ROWS, INGEST_TYPE, IngestReport, Usage
from ._health import HEALTH_TYPE, OPEN, Health

__all__ = [
    "ANALYTICS_TYPE",
    "DEFAULT_BATCH_ROWS",
    "HEALTH_TYPE",
    "INGEST_TYPE",
    "OPEN",
    "STATS_TYPE",
    "Analytics",
    "Health",
    "IngestReport",
    "Usage",
]
