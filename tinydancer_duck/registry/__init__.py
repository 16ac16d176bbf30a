"""The registry room: the sole writer of the ``agents`` table, and the agent snapshot the router scores.

May import: store, embed, ground.
"""

from ._costs import estimated_cost, tokens_from_bytes
from ._import import IMPORT_TYPE, agents_from_log
from ._registry import FOUND_TYPE, Registry, config_columns
from ._snapshot import AgentSnapshot, Similarities, build_snapshot, capability_text
from ._stats import AffineFold, fold_batch

__all__ = [
    "FOUND_TYPE",
    "IMPORT_TYPE",
    "AffineFold",
    "AgentSnapshot",
    "Registry",
    "Similarities",
    "agents_from_log",
    "build_snapshot",
    "capability_text",
    "config_columns",
    "estimated_cost",
    "fold_batch",
    "tokens_from_bytes",
]
