"""The replay room: simulations, cost-quality curves and budget what-ifs over historical logs, decided by the same
pure decision path as live routing.

May import: routing, the snapshot and decision modules, ground.
"""

from ._curves import CURVE_TYPE, aiq, curve
from ._frames import actual_point
from ._simulate import ROW_TYPE, SUMMARY_TYPE, simulate
from ._whatif import WHATIF_TYPE, Frontier, budget_whatif, whatif_frontier

__all__ = [
    "CURVE_TYPE",
    "ROW_TYPE",
    "SUMMARY_TYPE",
    "WHATIF_TYPE",
    "Frontier",
    "actual_point",
    "aiq",
    "budget_whatif",
    "curve",
    "simulate",
    "whatif_frontier",
]
