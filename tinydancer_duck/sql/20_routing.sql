-- Generated from the declarations in tinydancer_duck/options by `python -m tinydancer_duck.udfs`;
-- edit those, not this file (tests/test_surfaces.py checks it).
-- Routing (tinydancer_duck/udfs/routing.py -> Engine.route, tinydancer_duck/_decide.py).

-- Route requests: STRUCT(agent_name, confidence, estimated_cost, estimated_latency_ms, candidates, reasoning,
-- fallbacks, scores) per row over a column; SELECT * FROM ruvector_route(...) routes one request as a table row
-- (and explains it: explain defaults to true there).
CREATE OR REPLACE MACRO ruvector_route(request, optimize_for := 'balanced', required_capabilities := NULL,
        max_cost := NULL, max_latency_ms := NULL, min_quality := NULL, excluded_agents := NULL,
        budget_remaining := NULL, willingness_to_pay := NULL, explore := NULL, explore_seed := 0, num_fallbacks := 2,
        explain := false) AS
    _td_route(_td_request_text(request), _td_request_vector(request), optimize_for::VARCHAR,
        required_capabilities::VARCHAR[], max_cost::DOUBLE, max_latency_ms::DOUBLE, min_quality::DOUBLE,
        excluded_agents::VARCHAR[], budget_remaining::DOUBLE, willingness_to_pay::DOUBLE, explore::DOUBLE,
        explore_seed::BIGINT, num_fallbacks::BIGINT, explain::BOOLEAN);
CREATE OR REPLACE MACRO ruvector_route(request, optimize_for := 'balanced', required_capabilities := NULL,
        max_cost := NULL, max_latency_ms := NULL, min_quality := NULL, excluded_agents := NULL,
        budget_remaining := NULL, willingness_to_pay := NULL, explore := NULL, explore_seed := 0, num_fallbacks := 2,
        explain := true) AS TABLE
    SELECT unnest(result) FROM (SELECT _td_route_one(request::VARIANT, optimize_for::VARCHAR,
        required_capabilities::VARCHAR[], max_cost::DOUBLE, max_latency_ms::DOUBLE, min_quality::DOUBLE,
        excluded_agents::VARCHAR[], budget_remaining::DOUBLE, willingness_to_pay::DOUBLE, explore::DOUBLE,
        explore_seed::BIGINT, num_fallbacks::BIGINT, explain::BOOLEAN) AS result);

-- Plan several agents per request: STRUCT(strategy, steps, total_cost, total_latency_ms, reasoning) per row; the
-- table form gives one row per step of one request.
CREATE OR REPLACE MACRO ruvector_route_multi(request, num_agents := 3, strategy := 'pipeline',
        optimize_for := 'balanced', required_capabilities := NULL, max_cost := NULL, max_latency_ms := NULL,
        min_quality := NULL, excluded_agents := NULL, budget_remaining := NULL, willingness_to_pay := NULL) AS
    _td_route_multi(_td_request_text(request), _td_request_vector(request), num_agents::BIGINT, strategy::VARCHAR,
        optimize_for::VARCHAR, required_capabilities::VARCHAR[], max_cost::DOUBLE, max_latency_ms::DOUBLE,
        min_quality::DOUBLE, excluded_agents::VARCHAR[], budget_remaining::DOUBLE, willingness_to_pay::DOUBLE);
CREATE OR REPLACE MACRO ruvector_route_multi(request, num_agents := 3, strategy := 'pipeline',
        optimize_for := 'balanced', required_capabilities := NULL, max_cost := NULL, max_latency_ms := NULL,
        min_quality := NULL, excluded_agents := NULL, budget_remaining := NULL, willingness_to_pay := NULL) AS TABLE
    SELECT unnest(plan.steps, max_depth := 2) FROM (SELECT _td_route_multi(_td_request_text(request),
        _td_request_vector(request), num_agents::BIGINT, strategy::VARCHAR, optimize_for::VARCHAR,
        required_capabilities::VARCHAR[], max_cost::DOUBLE, max_latency_ms::DOUBLE, min_quality::DOUBLE,
        excluded_agents::VARCHAR[], budget_remaining::DOUBLE, willingness_to_pay::DOUBLE) AS plan);

-- Decide a whole batch together: total_cost, any per-request objective, or budget := B (the most total expected
-- quality within B; the willingness to pay it implies is a column). Over a table: SELECT * FROM
-- ruvector_batch_route((SELECT list(request) FROM 'log.parquet'), budget := 50).
CREATE OR REPLACE MACRO ruvector_batch_route(requests, optimize_for := 'total_cost', budget := NULL,
        required_capabilities := NULL, max_cost := NULL, max_latency_ms := NULL, min_quality := NULL,
        excluded_agents := NULL, budget_remaining := NULL, willingness_to_pay := NULL) AS TABLE
    SELECT unnest(decided, max_depth := 2) FROM (SELECT _td_batch_route(requests::VARCHAR[], optimize_for::VARCHAR,
        budget::DOUBLE, required_capabilities::VARCHAR[], max_cost::DOUBLE, max_latency_ms::DOUBLE,
        min_quality::DOUBLE, excluded_agents::VARCHAR[], budget_remaining::DOUBLE,
        willingness_to_pay::DOUBLE) AS decided);
