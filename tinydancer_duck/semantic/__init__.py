"""The semantic-routes room: routes and their examples in the store, matching kernels, conditions and threshold
fitting. ``_kernels``, ``_conditions`` and ``_fit`` never import the store.

May import: store, embed, ground.
"""

from ._routes import MATCH_TYPE, SemanticRoutes

__all__ = [
    "MATCH_TYPE",
    "SemanticRoutes",
]
