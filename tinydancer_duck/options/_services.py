"""The SQL functions of semantic routes, usage, analytics, health and budgets, declared once."""

from __future__ import annotations

from ._learn import SOURCE
from ._params import Choices, Flag, Interval, Param, Signature, Text
from ._registry import COLUMNS, MAX_STORED

_AMOUNT = Interval(0, MAX_STORED)
_NAME = Param("name", "VARCHAR", check=Text(), doc="the route's name", per_row=True)
NOW = Param("now", "TIMESTAMP", None, doc="the moment to report at (default: now; TIMESTAMP read as UTC)")
TOP_K = Param("top_k", "BIGINT", 3, Interval(1, integer=True), "routes to list")
#: The monthly allocation's budget and the thresholds an agent must meet to be funded.
MONTHLY_BUDGET = Param("monthly_budget", "DOUBLE", check=Interval(0, closed="neither"), doc="dollars for the month")
QUALITY_FLOOR = Param("quality_threshold", "DOUBLE", 0.8, Interval(0, 1), "the least quality an agent must have")
LATENCY_CEILING = Param("latency_threshold_ms", "DOUBLE", 5000, Interval(0),
                        "the most average latency an agent may have")
#: The periods a budget may cover (calendar, UTC).
PERIODS = ("day", "week", "month")

SEMANTIC = (
    Signature("ruvector_create_route",
              (_NAME, Param("description", "VARCHAR", doc="what the route is for", per_row=True),
               Param("target_agent", "VARCHAR", check=Text(), doc="the agent (or handler) it sends requests to",
                     per_row=True),
               Param("priority", "DOUBLE", 0, Interval(-MAX_STORED, MAX_STORED), "breaks near-ties (higher first)",
                     per_row=True),
               Param("embedding", "FLOAT[]", None, doc="the route's vector (default: the description's)",
                     per_row=True),
               Param("min_similarity", "DOUBLE", None, Interval(-1, 1), "the similarity a request must reach "
                     "(default: calibrated against unrelated requests)", per_row=True),
               Param("conditions", "JSON", None, doc="time_range (UTC), user_tiers, rate_limit_per_min",
                     per_row=True)),
              "40_semantic", twin="SemanticRoutes.create_route",
              doc="Create or replace a semantic route (upsert by name); true per row."),
    Signature("ruvector_delete_route", (_NAME,), "40_semantic", twin="SemanticRoutes.delete",
              doc="Delete a route; an error if it does not exist."),
    Signature("ruvector_list_routes", (), "40_semantic", twin="SemanticRoutes.table",
              doc="Every route with its threshold, conditions, examples and whether its target is registered."),
    Signature("ruvector_add_route_example",
              (Param("route_name", "VARCHAR", check=Text(), doc="the route", per_row=True),
               Param("example", "REQUEST", doc="an utterance (text or its embedding)", per_row=True)),
              "40_semantic", twin="SemanticRoutes.add_examples",
              doc="Add an utterance to a route; a route scores a request by the max over its utterances."),
    Signature("ruvector_semantic_route",
              (Param("query", "REQUEST", doc="text, or its embedding", per_row=True),
               TOP_K,
               Param("ts", "TIMESTAMP", None, doc="when conditions are checked (default: now), so a replay sees "
                     "the routes as they were", per_row=True),
               Param("user_tier", "VARCHAR", None, doc="the request's user tier, for routes that name tiers",
                     per_row=True)),
              "40_semantic", twin="Engine.semantic_match",
              doc="The routes a query matches, best first: LIST(STRUCT(route_name, similarity, target_agent, "
                  "confidence, target_registered)) per row; the table form gives one row per route of one query."),
    Signature("ruvector_fit_routes",
              (SOURCE, Param("text_column", "VARCHAR", "text", Text(), "the column holding the queries"),
               Param("route_column", "VARCHAR", "route", Text(), "the column holding the route (NULL: none)"),
               Param("out_of_scope_weight", "DOUBLE", 1.0, Interval(0, MAX_STORED, closed="neither"),
                     "weight of one out-of-scope example in the fitted accuracy (in-scope ones weigh 1)")),
              "40_semantic", twin="SemanticRoutes.fit",
              doc="Learn each route's min_similarity from labeled rows (NULL route = out of scope): per-route "
                  "precision, recall, F1, accuracy and out-of-scope recall."),
)

TIME_RANGE = Param("time_range", "VARCHAR", "7 days", doc="'7 days', '24 hours', '30 minutes', '1 week' or 'all'")

USAGE = (
    Signature("ruvector_record_usage",
              (Param("agent", "VARCHAR", check=Text(), doc="the agent that served the request", per_row=True),
               Param("cost", "DOUBLE", check=_AMOUNT, doc="dollars it cost", per_row=True),
               Param("success", "BOOLEAN", check=Flag(), doc="whether it succeeded", per_row=True),
               Param("latency_ms", "DOUBLE", check=_AMOUNT, doc="how long it took", per_row=True),
               Param("ts", "TIMESTAMP", None, doc="when (default: now)", per_row=True),
               Param("request_id", "VARCHAR", None, doc="the request's id (an ingest skips ids stored already)",
                     per_row=True),
               Param("route", "VARCHAR", None, doc="the semantic route that matched", per_row=True),
               Param("category", "VARCHAR", None, doc="the request's category", per_row=True),
               Param("tokens_in", "BIGINT", None, _AMOUNT, "input tokens", per_row=True),
               Param("tokens_out", "BIGINT", None, _AMOUNT, "output tokens", per_row=True),
               Param("quality", "DOUBLE", None, Interval(0, 1), "the outcome's quality in [0, 1]", per_row=True),
               Param("propensity", "DOUBLE", None, Interval(0, 1, closed="right"), "the probability the routing "
                     "policy had of choosing this agent (ruvector_route's propensity; 1: a deterministic choice)",
                     per_row=True),
               Param("policy", "VARCHAR", None, doc="a name for the policy that chose the agent", per_row=True)),
              "50_usage", twin="Usage.record",
              doc="Record events, one per row (vectorized: one append and one agents write per batch): true when "
                  "the agent is registered (its running stats were updated), false when the event was stored for "
                  "an unregistered agent. Bad values fail the batch before anything of it is written."),
    Signature("ruvector_ingest_usage",
              (Param("path", "VARCHAR", doc="a Parquet log: a file, a folder or a glob"), COLUMNS,
               Param("batch_rows", "BIGINT", 100_000, Interval(1, 10_000_000, integer=True), "rows per read batch"),
               Param("ts", "MOMENT", None, doc="when the events of a log without a ts column happened: 'now', or "
                     "an as_of timestamp for a historical log (required for such a log: history is not now)")),
              "50_usage", twin="Usage.ingest",
              doc="Bulk ingest of a Parquet log, streamed and all or nothing (validated in full before anything is "
                  "written; a request_id stored already, or repeated in the log, is stored once). One row: rows, "
                  "total_cost, agents_updated, unknown_agents, duplicates, already_stored, seconds."),
    Signature("ruvector_usage_events", (TIME_RANGE.evolve(default="all"),), "50_usage",
              twin="Analytics.usage_events",
              doc="The recorded events since now - time_range, in time order: ts, request_id, agent, route, "
                  "category, tokens_in, tokens_out, cost, latency_ms, success, quality, propensity, policy. Joined "
                  "with the requests' text, a log a replay reads."),
    Signature("ruvector_routing_analytics",
              (TIME_RANGE,
               Param("group_by", "VARCHAR", "agent", Choices(("agent", "route", "category", "day", "hour")),
                     "agent, route, category, day or hour")),
              "50_usage", twin="Analytics.analytics_struct",
              doc="Per group over the events since now - time_range: the group key (named like group_by), "
                  "total_requests, total_cost, avg_cost, avg_latency_ms, p50_latency_ms, p95_latency_ms, "
                  "success_rate, avg_quality."),
    Signature("ruvector_routing_stats", (), "50_usage", twin="Analytics.routing_stats",
              doc="One summary: agents, active_agents, total_requests, total_cost, success_rate, avg_latency_ms, "
                  "agents_with_usage, first_ts, last_ts (a STRUCT, or a table row)."),
    Signature("ruvector_agent_health", (NOW,), "50_usage", twin="Health.table",
              doc="The circuit breaker of every agent at now: state (closed, open, half_open), recent_failures and "
                  "recent_requests within the window, opened_at, retry_at, probe_successes, last_failure_at."),
)

BUDGET = (
    Signature("ruvector_set_budget",
              (Param("amount", "DOUBLE", check=_AMOUNT, doc="dollars per period", per_row=True),
               Param("agent", "VARCHAR", None, doc="the agent (NULL: the global budget)", per_row=True),
               Param("period", "VARCHAR", "month", Choices(PERIODS), "day, week or month (calendar, UTC)",
                     per_row=True)),
              "55_budget", twin="Budgets.set", doc="Set or replace a budget; true per row."),
    Signature("ruvector_remove_budget",
              (Param("agent", "VARCHAR", None, doc="the agent (NULL: the global budget)", per_row=True),),
              "55_budget", twin="Budgets.remove", doc="Remove a budget; false if there was none."),
    Signature("ruvector_budget_status", (NOW,), "55_budget", twin="Budgets.status",
              doc="scope, agent, period, budget, spent, remaining, period_start, period_end for every budget at now."),
    Signature("ruvector_optimize_budget",
              (MONTHLY_BUDGET, QUALITY_FLOOR, LATENCY_CEILING,
               Param("demand", "VARCHAR", None, doc="a file of (category, requests[, avg_tokens]); default: the "
                     "recorded usage of the last period_days days"),
               Param("period_days", "DOUBLE", 30, Interval(0, 36_500, closed="right"), "days of usage that make the "
                     "demand, scaled to 30")),
              "55_budget", twin="Budgets.optimize",
              doc="Allocate a monthly budget across agents from demand per category: rows of kind 'agent' per "
                  "funded agent, then one 'unserved' and one 'unallocated' row; columns kind, agent, categories, "
                  "expected_requests, allocation, expected_spend, expected_quality, share."),
)

SIGNATURES = (*SEMANTIC, *USAGE, *BUDGET)
