"""The budget room: spending limits tracked against usage, and the monthly allocation optimizer.

May import: usage, registry, store, ground.
"""

from ._budgets import STATUS_TYPE, Budgets

__all__ = [
    "STATUS_TYPE",
    "Budgets",
]
