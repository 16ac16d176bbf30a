-- Simulation, cost-quality curves, budget what-if and the outcome router (udfs/replay.py ->
-- tinydancer_duck/replay/_simulate.py, curves.py, whatif.py, outcome.py).
--
-- log: a Parquet file, directory or glob. columns: JSON text (or a STRUCT) mapping log fields to its columns, e.g.
-- '{"request": "prompt", "agent": "model"}'; fields request, request_id, category, agent, cost, quality, latency_ms,
-- and the per-agent column patterns agent_quality (default '{agent}') and agent_cost (default '{agent}|total_cost').

-- Replay a log under a policy with the engine's router: one row per request (row, request_id, category,
-- agent_name, expected_quality, quality, quality_source, cost, cost_source, estimated_cost, latency_ms,
-- actual_agent, actual_cost, actual_quality, reasoning). budget: total dollars for the whole log (Lagrangian).
CREATE OR REPLACE MACRO ruvector_simulate(log, optimize_for := 'balanced', required_capabilities := NULL,
        max_cost := NULL, max_latency_ms := NULL, min_quality := NULL, excluded_agents := NULL, budget := NULL,
        columns := NULL) AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_simulate(log::VARCHAR, optimize_for::VARCHAR,
        required_capabilities::VARCHAR[], max_cost::DOUBLE, max_latency_ms::DOUBLE, min_quality::DOUBLE,
        excluded_agents::VARCHAR[], budget::DOUBLE, _td_json_text(columns)) AS rows);

-- The same replay, streamed, as one summary row: cost, expected and measured quality with their sources, latency,
-- agent mix and savings against the log's actual choices.
CREATE OR REPLACE MACRO ruvector_simulate_summary(log, optimize_for := 'balanced', required_capabilities := NULL,
        max_cost := NULL, max_latency_ms := NULL, min_quality := NULL, excluded_agents := NULL, budget := NULL,
        columns := NULL) AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_simulate_summary(log::VARCHAR, optimize_for::VARCHAR,
        required_capabilities::VARCHAR[], max_cost::DOUBLE, max_latency_ms::DOUBLE, min_quality::DOUBLE,
        excluded_agents::VARCHAR[], budget::DOUBLE, _td_json_text(columns)) AS rows);

-- Cost-quality curve: the router swept over willingness-to-pay lambda, the single agents (zero router) and the
-- oracle; on_hull marks the non-decreasing convex hull, aiq is RouterBench's AIQ of the series.
CREATE OR REPLACE MACRO ruvector_cost_quality_curve(log, points := 40, columns := NULL,
        required_capabilities := NULL, max_cost := NULL, max_latency_ms := NULL, min_quality := NULL,
        excluded_agents := NULL) AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_cost_quality_curve(log::VARCHAR, points::BIGINT,
        _td_json_text(columns), required_capabilities::VARCHAR[], max_cost::DOUBLE, max_latency_ms::DOUBLE,
        min_quality::DOUBLE, excluded_agents::VARCHAR[]) AS rows);

-- One row per total budget: estimated_spend, spend, expected_quality, quality, requests, served, served_share,
-- meets_quality_threshold, agent_mix (Lagrangian batch allocation over the whole log).
CREATE OR REPLACE MACRO ruvector_budget_whatif(log, budgets, quality_threshold := NULL,
        latency_threshold_ms := NULL, columns := NULL, required_capabilities := NULL, max_cost := NULL,
        min_quality := NULL, excluded_agents := NULL) AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_budget_whatif(log::VARCHAR, budgets::DOUBLE[],
        quality_threshold::DOUBLE, latency_threshold_ms::DOUBLE, _td_json_text(columns),
        required_capabilities::VARCHAR[], max_cost::DOUBLE, min_quality::DOUBLE, excluded_agents::VARCHAR[]) AS rows);

-- Train the outcome router from a log with per-agent outcomes (wide or long), save it as the next version of
-- `model` (it becomes active) and return validation metrics: kind 'agent' (per agent), 'overall', 'routing'
-- (router vs best single agent vs oracle: quality and cost per request).
CREATE OR REPLACE MACRO ruvector_train_outcome_router(source, model := 'outcomes', columns := NULL,
        hidden_dim := 0, epochs := 300, learning_rate := 0.01, weight_decay := 0.001,
        validation_fraction := 0.2, random_state := 0) AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_train_outcome_router(source::VARCHAR, model::VARCHAR,
        _td_json_text(columns), hidden_dim::BIGINT, epochs::BIGINT, learning_rate::DOUBLE, weight_decay::DOUBLE,
        validation_fraction::DOUBLE, random_state::BIGINT) AS rows);
