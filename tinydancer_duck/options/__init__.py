"""Every option of the product, declared once (DESIGN §13): a parameter's name, SQL type, default, constraint and
doc, and every SQL function's signature. The SQL macros, UDF registrations, adapters, CLI flags, distributed entry
points and the reference docs follow from these declarations, and one check validates a value wherever it arrives.

Value objects (:class:`RouteOptions`, :class:`Policy`, :class:`FastGRNNConfig`, :class:`OutcomeModelConfig`) declare
their fields as parameters and travel whole through every layer.

Ground: any room may import this package; it imports neither numpy nor pyarrow (the CLI builds its flags from it
before any heavy import).
"""

from ._learn import CONTENT, HOLDOUT, MAX_EPOCHS, MAX_HIDDEN_DIM, FastGRNNConfig, OutcomeModelConfig
from ._learn import SIGNATURES as _LEARN
from ._params import (
    ANYTHING,
    REQUIRED,
    Check,
    Choices,
    Declared,
    Flag,
    Interval,
    Param,
    Signature,
    Strings,
    Text,
    declare,
    is_column,
    one_value,
    params_of,
    per_row_values,
)
from ._registry import (
    AGENT_FIELDS,
    AGENT_TYPES,
    COLUMNS,
    CONFIG_ONLY_FIELDS,
    LOG,
    MAX_CONTEXT_WINDOW,
    MAX_STORED,
    SCOPES,
)
from ._registry import SIGNATURES as _REGISTRY
from ._replay import (
    BUDGETS,
    ESTIMATORS,
    INCLUDE_UNOBSERVED,
    INTERVALS,
    LIVE_ONLY,
    POINTS,
    QUALITY_THRESHOLD,
    Estimate,
    Policy,
)
from ._replay import SIGNATURES as _REPLAY
from ._route import (
    BATCH_OBJECTIVE,
    BATCH_OBJECTIVES,
    BUDGET,
    EXPLAIN,
    EXPLORING,
    NUM_AGENTS,
    NUM_FALLBACKS,
    OBJECTIVE_NAMES,
    REQUEST,
    STRATEGY,
    RouteOptions,
)
from ._route import SIGNATURES as _ROUTE
from ._services import LATENCY_CEILING, MONTHLY_BUDGET, PERIODS, QUALITY_FLOOR, TOP_K
from ._services import SIGNATURES as _SERVICES

#: Every SQL function, by name, in the order of its SQL file.
SIGNATURES: dict[str, Signature] = {s.name: s for s in sorted((*_REGISTRY, *_ROUTE, *_LEARN, *_SERVICES, *_REPLAY),
                                                              key=lambda s: s.area)}

__all__ = [
    "AGENT_FIELDS", "AGENT_TYPES", "ANYTHING", "BATCH_OBJECTIVE", "BATCH_OBJECTIVES", "BUDGET", "BUDGETS", "COLUMNS",
    "CONFIG_ONLY_FIELDS", "CONTENT", "ESTIMATORS", "EXPLAIN", "EXPLORING", "HOLDOUT", "INCLUDE_UNOBSERVED", "INTERVALS", "LATENCY_CEILING",
    "LIVE_ONLY", "LOG", "MAX_CONTEXT_WINDOW", "MAX_EPOCHS", "MAX_HIDDEN_DIM", "MAX_STORED", "MONTHLY_BUDGET",
    "NUM_AGENTS", "NUM_FALLBACKS", "OBJECTIVE_NAMES", "PERIODS", "POINTS", "QUALITY_FLOOR", "QUALITY_THRESHOLD",
    "REQUEST", "REQUIRED", "SCOPES", "SIGNATURES", "STRATEGY", "TOP_K", "Check", "Choices", "Declared", "Estimate",
    "FastGRNNConfig", "Flag", "Interval", "OutcomeModelConfig", "Param", "Policy", "RouteOptions", "Signature",
    "Strings", "Text", "declare", "is_column", "one_value", "params_of", "per_row_values",
]
