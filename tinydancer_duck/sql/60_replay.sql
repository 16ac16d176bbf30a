-- Generated from the declarations in tinydancer_duck/options by `python -m tinydancer_duck.udfs`;
-- edit those, not this file (tests/test_surfaces.py checks it).
-- Simulation, cost-quality curves, budget what-if and the outcome router (tinydancer_duck/udfs/replay.py ->
-- tinydancer_duck/replay/, tinydancer_duck/learn/). log: a Parquet, CSV or JSON file (by extension), or a folder
-- or glob of them; columns maps log fields (request, request_id, category, agent, cost, quality, latency_ms, and
-- the per-agent column patterns agent_quality, default '{agent}', and agent_cost, default '{agent}|total_cost')
-- to its columns. holdout := f replays only the requests ruvector_train_outcome_router(holdout := f) kept out of
-- training; observed_only := true chooses only among agents whose outcome the log holds.

-- Replay a log under a policy with the engine's router: one row per request (row, request_id, category,
-- agent_name, propensity (1 unless the policy explores), expected_quality, quality, quality_source, cost,
-- cost_source, estimated_cost, latency_ms, actual_agent, actual_cost, actual_quality, reasoning). Every figure
-- says where it came from (observed_rows, category_mean_rows, predicted_rows, quality_score_rows;
-- logged_cost_rows, estimated_cost_rows: each group adds up to the decisions) and carries an interval
-- (<figure>_low, <figure>_high) from the named estimator.
CREATE OR REPLACE MACRO ruvector_simulate(log, optimize_for := 'balanced', required_capabilities := NULL,
        max_cost := NULL, max_latency_ms := NULL, min_quality := NULL, excluded_agents := NULL,
        willingness_to_pay := NULL, explore := NULL, explore_seed := 0, budget := NULL, observed_only := false,
        holdout := NULL, estimator := NULL, confidence := 0.95, interval := NULL, columns := NULL) AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_simulate(log::VARCHAR, optimize_for::VARCHAR,
        required_capabilities::VARCHAR[], max_cost::DOUBLE, max_latency_ms::DOUBLE, min_quality::DOUBLE,
        excluded_agents::VARCHAR[], willingness_to_pay::DOUBLE, explore::DOUBLE, explore_seed::BIGINT,
        budget::DOUBLE, observed_only::BOOLEAN, holdout::DOUBLE, estimator::VARCHAR, confidence::DOUBLE,
        interval::VARCHAR, _td_json_text(columns)) AS rows);

-- The same replay, streamed, as one summary row: cost, expected and measured quality with their sources,
-- latency, agent mix, savings against the log's actual choices, budget and overrun, warnings. Every figure says
-- where it came from (observed_rows, category_mean_rows, predicted_rows, quality_score_rows; logged_cost_rows,
-- estimated_cost_rows: each group adds up to the decisions) and carries an interval (<figure>_low,
-- <figure>_high) from the named estimator.
CREATE OR REPLACE MACRO ruvector_simulate_summary(log, optimize_for := 'balanced', required_capabilities := NULL,
        max_cost := NULL, max_latency_ms := NULL, min_quality := NULL, excluded_agents := NULL,
        willingness_to_pay := NULL, explore := NULL, explore_seed := 0, budget := NULL, observed_only := false,
        holdout := NULL, estimator := NULL, confidence := 0.95, interval := NULL, columns := NULL) AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_simulate_summary(log::VARCHAR, optimize_for::VARCHAR,
        required_capabilities::VARCHAR[], max_cost::DOUBLE, max_latency_ms::DOUBLE, min_quality::DOUBLE,
        excluded_agents::VARCHAR[], willingness_to_pay::DOUBLE, explore::DOUBLE, explore_seed::BIGINT,
        budget::DOUBLE, observed_only::BOOLEAN, holdout::DOUBLE, estimator::VARCHAR, confidence::DOUBLE,
        interval::VARCHAR, _td_json_text(columns)) AS rows);

-- The cost-quality curve: the router swept over willingness_to_pay (ruvector_route(willingness_to_pay := w)
-- makes the same choices), the single agents (zero router) and the oracle; on_hull marks the non-decreasing
-- convex hull, aiq is RouterBench's AIQ of the series.
CREATE OR REPLACE MACRO ruvector_cost_quality_curve(log, points := 40, columns := NULL,
        required_capabilities := NULL, max_cost := NULL, max_latency_ms := NULL, min_quality := NULL,
        excluded_agents := NULL, observed_only := false, holdout := NULL, estimator := NULL, confidence := 0.95,
        interval := NULL) AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_cost_quality_curve(log::VARCHAR, points::BIGINT,
        _td_json_text(columns), required_capabilities::VARCHAR[], max_cost::DOUBLE, max_latency_ms::DOUBLE,
        min_quality::DOUBLE, excluded_agents::VARCHAR[], observed_only::BOOLEAN, holdout::DOUBLE, estimator::VARCHAR,
        confidence::DOUBLE, interval::VARCHAR) AS rows);

-- One row per total budget: estimated_spend, spend (logged where the log has it: the budget is held there),
-- budget_overrun, the willingness_to_pay that budget implies, expected_quality, quality, requests, served,
-- served_share, meets_quality_threshold, agent_mix, source counts and warnings.
CREATE OR REPLACE MACRO ruvector_budget_whatif(log, budgets, quality_threshold := NULL, columns := NULL,
        required_capabilities := NULL, max_cost := NULL, max_latency_ms := NULL, min_quality := NULL,
        excluded_agents := NULL, observed_only := false, holdout := NULL, estimator := NULL, confidence := 0.95,
        interval := NULL) AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_budget_whatif(log::VARCHAR, budgets::DOUBLE[],
        quality_threshold::DOUBLE, _td_json_text(columns), required_capabilities::VARCHAR[], max_cost::DOUBLE,
        max_latency_ms::DOUBLE, min_quality::DOUBLE, excluded_agents::VARCHAR[], observed_only::BOOLEAN,
        holdout::DOUBLE, estimator::VARCHAR, confidence::DOUBLE, interval::VARCHAR) AS rows);

-- Train the outcome router from a log with per-agent outcomes (wide or long), save it as the next version of
-- model (it becomes active) and return its out-of-fold metrics: kind 'agent' (per agent), 'overall', 'routing'
-- (router vs best single agent vs oracle: quality and cost per request). folds models are cross-fitted first;
-- their out-of-fold curve calibrates the willingness to pay saved with the model (ruvector_calibrate).
CREATE OR REPLACE MACRO ruvector_train_outcome_router(source, model := 'outcomes', columns := NULL, kind := 'knn',
        hidden_dim := NULL, epochs := NULL, learning_rate := NULL, weight_decay := NULL, validation_fraction := NULL,
        calibration := 'platt', random_state := 0, folds := 5, holdout := NULL) AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_train_outcome_router(source::VARCHAR, model::VARCHAR,
        _td_json_text(columns), kind::VARCHAR, hidden_dim::BIGINT, epochs::BIGINT, learning_rate::DOUBLE,
        weight_decay::DOUBLE, validation_fraction::DOUBLE, calibration::VARCHAR, random_state::BIGINT, folds::BIGINT,
        holdout::DOUBLE) AS rows);

-- The willingness to pay that meets one target on the outcome router's out-of-fold cost-quality curve; none: the
-- default knob optimize_for := 'learned' uses (95% of the best agent's quality). reached is false when no point
-- meets it.
CREATE OR REPLACE MACRO ruvector_calibrate(quality_share := NULL, cost_per_1k := NULL, strongest_share := NULL,
        model := NULL) AS TABLE
    SELECT unnest(result) FROM (SELECT _td_calibrate(quality_share::DOUBLE, cost_per_1k::DOUBLE,
        strongest_share::DOUBLE, model::VARCHAR) AS result);

-- The out-of-fold curve itself: one row per willingness to pay of its grid (cost_per_1k, quality, quality_share,
-- strongest_share), is_default marking the point optimize_for := 'learned' routes at.
CREATE OR REPLACE MACRO ruvector_calibration_curve(model := NULL) AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_calibration_curve(model::VARCHAR) AS rows);
