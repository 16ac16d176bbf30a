"""The semantic-routes room: routes and their examples in the store, matching kernels, conditions and threshold
fitting. ``_kernels``, ``_conditions`` and ``_fit`` never import the store.

May import: store, embed, ground.
"""

from ._conditions import US_PER_MIN, RouteConditions, epoch_us
from ._kernels import MATCH_TYPE, RouteSnapshot, build_route_snapshot
from ._match import check_top_k, match_routes, matches_arrow, user_tiers
from ._routes import SemanticRoutes

__all__ = [
    "MATCH_TYPE",
    "US_PER_MIN",
    "RouteConditions",
    "RouteSnapshot",
    "SemanticRoutes",
    "build_route_snapshot",
    "check_top_k",
    "epoch_us",
    "match_routes",
    "matches_arrow",
    "user_tiers",
]
