-- Routing. ruvector_route is both a scalar (one STRUCT per row, for a column of requests) and a
-- table macro (one request: SELECT * FROM ruvector_route(request := ...)). A request may be text or an embedding:
-- one UDF takes it as both, the matching argument filled and the other NULL (typeof() is constant per query).
-- A CASE choosing between two UDFs made DuckDB call both on a constant request.

-- A request as text (NULL when it is an embedding) and as an embedding (NULL when it is not).
CREATE OR REPLACE MACRO _td_request_text(request) AS
    CASE WHEN typeof(request) LIKE '%]' THEN NULL ELSE try_cast(request AS VARCHAR) END;
CREATE OR REPLACE MACRO _td_request_vector(request) AS
    CASE WHEN typeof(request) LIKE '%]' THEN try_cast(request AS FLOAT[]) END;

-- Besides the decision: `fallbacks`, the next num_fallbacks candidates by score, and with explain := true
-- `scores`, every candidate's breakdown (off by default in the scalar form: over a large log it costs more than
-- the decision; the one-request table form below always explains). willingness_to_pay := w (dollars per unit of
-- expected quality) picks the candidate of best expected quality - cost / w, whatever optimize_for says;
-- optimize_for := 'learned' uses the w the outcome router was calibrated to (ruvector_calibrate).
CREATE OR REPLACE MACRO ruvector_route(request, optimize_for := 'balanced', required_capabilities := NULL,
        max_cost := NULL, max_latency_ms := NULL, min_quality := NULL, excluded_agents := NULL,
        budget_remaining := NULL, willingness_to_pay := NULL, num_fallbacks := 2, explain := false) AS
    _td_route(_td_request_text(request), _td_request_vector(request), optimize_for::VARCHAR,
        required_capabilities::VARCHAR[], max_cost::DOUBLE, max_latency_ms::DOUBLE, min_quality::DOUBLE,
        excluded_agents::VARCHAR[], budget_remaining::DOUBLE, willingness_to_pay::DOUBLE, num_fallbacks::BIGINT,
        explain::BOOLEAN);

-- The table form routes one request through a one-row UDF that takes Python values: the request as a VARIANT
-- (text, an embedding list or NULL, so no CASE on its type) and the options. Arrow conversions of nine arguments
-- and a STRUCT cost more than routing one request. The subquery makes DuckDB call it once, not once per field.
CREATE OR REPLACE MACRO ruvector_route(request, optimize_for := 'balanced', required_capabilities := NULL,
        max_cost := NULL, max_latency_ms := NULL, min_quality := NULL, excluded_agents := NULL,
        budget_remaining := NULL, willingness_to_pay := NULL, num_fallbacks := 2, explain := true) AS TABLE
    SELECT unnest(decision) FROM (SELECT _td_route_one(request::VARIANT, optimize_for::VARCHAR,
        required_capabilities::VARCHAR[], max_cost::DOUBLE, max_latency_ms::DOUBLE, min_quality::DOUBLE,
        excluded_agents::VARCHAR[], budget_remaining::DOUBLE, willingness_to_pay::DOUBLE, num_fallbacks::BIGINT,
        explain::BOOLEAN) AS decision);

-- Multi-agent plans: the scalar gives STRUCT(strategy, steps, total_cost, total_latency_ms, reasoning) per row; the
-- table form gives one row per step of one request.
CREATE OR REPLACE MACRO ruvector_route_multi(request, num_agents := 3, strategy := 'pipeline',
        optimize_for := 'balanced', required_capabilities := NULL, max_cost := NULL, max_latency_ms := NULL,
        min_quality := NULL, excluded_agents := NULL, budget_remaining := NULL, willingness_to_pay := NULL) AS
    _td_route_multi(_td_request_text(request), _td_request_vector(request), num_agents::BIGINT,
        strategy::VARCHAR, optimize_for::VARCHAR, required_capabilities::VARCHAR[], max_cost::DOUBLE,
        max_latency_ms::DOUBLE, min_quality::DOUBLE, excluded_agents::VARCHAR[], budget_remaining::DOUBLE,
        willingness_to_pay::DOUBLE);

CREATE OR REPLACE MACRO ruvector_route_multi(request, num_agents := 3, strategy := 'pipeline',
        optimize_for := 'balanced', required_capabilities := NULL, max_cost := NULL, max_latency_ms := NULL,
        min_quality := NULL, excluded_agents := NULL, budget_remaining := NULL, willingness_to_pay := NULL) AS TABLE
    SELECT unnest(plan.steps, max_depth := 2) FROM (SELECT ruvector_route_multi(request, num_agents := num_agents,
        strategy := strategy, optimize_for := optimize_for, required_capabilities := required_capabilities,
        max_cost := max_cost, max_latency_ms := max_latency_ms, min_quality := min_quality,
        excluded_agents := excluded_agents, budget_remaining := budget_remaining,
        willingness_to_pay := willingness_to_pay) AS plan);

-- A whole batch decided together: 'total_cost' (cheapest feasible per request), any ruvector_route objective, or
-- budget := B (most total expected quality within B: each request takes its best expected quality - cost / w,
-- with the one willingness to pay w that spends B; w is a column), or willingness_to_pay := w given. Over a table:
--   SELECT * FROM ruvector_batch_route((SELECT list(request) FROM 'log.parquet'), budget := 50)
CREATE OR REPLACE MACRO ruvector_batch_route(requests, optimize_for := 'total_cost', budget := NULL,
        willingness_to_pay := NULL) AS TABLE
    SELECT unnest(decided, max_depth := 2)
    FROM (SELECT _td_batch_route(requests::VARCHAR[], optimize_for::VARCHAR, budget::DOUBLE,
        willingness_to_pay::DOUBLE) AS decided);
