-- Generated from the declarations in tinydancer_duck/options by `python -m tinydancer_duck.udfs`;
-- edit those, not this file (tests/test_surfaces.py checks it).
-- Usage, analytics and health (tinydancer_duck/udfs/usage.py -> tinydancer_duck/usage/). Timestamps reach the
-- UDFs as µs since the epoch (UTC): TIMESTAMPTZ as is, TIMESTAMP/DATE read as UTC, text with an offset ('...Z',
-- '...+02:00') by its offset and text without one as UTC; NULL means now.

-- Record events, one per row (vectorized: one append and one agents write per batch): true when the agent is
-- registered (its running stats were updated), false when the event was stored for an unregistered agent. Bad
-- values fail the batch before anything of it is written.
CREATE OR REPLACE MACRO ruvector_record_usage(agent, cost, success, latency_ms, ts := NULL, request_id := NULL,
        route := NULL, category := NULL, tokens_in := NULL, tokens_out := NULL, quality := NULL, propensity := NULL,
        policy := NULL) AS
    _td_record_usage(agent::VARCHAR, cost::DOUBLE, success::BOOLEAN, latency_ms::DOUBLE, _td_epoch_us(ts),
        request_id::VARCHAR, route::VARCHAR, category::VARCHAR, tokens_in::BIGINT, tokens_out::BIGINT,
        quality::DOUBLE, propensity::DOUBLE, policy::VARCHAR);

-- Bulk ingest of a Parquet log, streamed and all or nothing (validated in full before anything is written; a
-- request_id stored already, or repeated in the log, is stored once). One row: rows, total_cost, agents_updated,
-- unknown_agents, duplicates, already_stored, seconds.
CREATE OR REPLACE MACRO ruvector_ingest_usage(path, columns := NULL, batch_rows := 100000, ts := NULL) AS TABLE
    SELECT unnest(result) FROM (SELECT _td_ingest_usage(path::VARCHAR, _td_json_text(columns), batch_rows::BIGINT,
        _td_moment(ts)) AS result);

-- The recorded events since now - time_range, in time order: ts, request_id, agent, route, category, tokens_in,
-- tokens_out, cost, latency_ms, success, quality, propensity, policy. Joined with the requests' text, a log a
-- replay reads.
CREATE OR REPLACE MACRO ruvector_usage_events(time_range := 'all') AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_usage_events(time_range::VARCHAR) AS rows);

-- Per group over the events since now - time_range: the group key (named like group_by), total_requests,
-- total_cost, avg_cost, avg_latency_ms, p50_latency_ms, p95_latency_ms, success_rate, avg_quality.
CREATE OR REPLACE MACRO ruvector_routing_analytics(time_range := '7 days', group_by := 'agent') AS TABLE
    SELECT COLUMNS(lambda c: c NOT IN ('agent', 'route', 'category', 'day',
        'hour') OR c = lower(trim(group_by::VARCHAR))) FROM (SELECT unnest(rows,
        max_depth := 2) FROM (SELECT _td_routing_analytics(time_range::VARCHAR, group_by::VARCHAR) AS rows));

-- One summary: agents, active_agents, total_requests, total_cost, success_rate, avg_latency_ms,
-- agents_with_usage, first_ts, last_ts (a STRUCT, or a table row).
CREATE OR REPLACE MACRO ruvector_routing_stats() AS
    _td_routing_stats();
CREATE OR REPLACE MACRO ruvector_routing_stats() AS TABLE
    SELECT unnest(result) FROM (SELECT _td_routing_stats() AS result);

-- The circuit breaker of every agent at now: state (closed, open, half_open), recent_failures and
-- recent_requests within the window, opened_at, retry_at, probe_successes, last_failure_at.
CREATE OR REPLACE MACRO ruvector_agent_health(now := NULL) AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_agent_health(_td_epoch_us(now)) AS rows);
