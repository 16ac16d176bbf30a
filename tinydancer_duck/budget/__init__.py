"""The budget room: spending limits tracked against usage, and the monthly allocation optimizer.

May import: usage, registry, store, ground.
"""

from ._allocate import OPTIMIZE_TYPE
from ._budgets import STATUS_TYPE, Budgets

__all__ = [
    "OPTIMIZE_TYPE",
    "STATUS_TYPE",
    "Budgets",
]
