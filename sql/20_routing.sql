-- Embedding and routing. ruvector_route is both a scalar (one STRUCT per row, for a column of requests) and a
-- table macro (one request: SELECT * FROM ruvector_route(request := ...)). A request may be text or an embedding:
-- typeof() is constant per query, so DuckDB folds the CASE and calls exactly one of the two UDFs.

CREATE OR REPLACE MACRO ruvector_embed(text) AS _td_embed(text::VARCHAR);

CREATE OR REPLACE MACRO ruvector_route(request, optimize_for := 'balanced', required_capabilities := NULL,
        max_cost := NULL, max_latency_ms := NULL, min_quality := NULL, excluded_agents := NULL,
        budget_remaining := NULL) AS
    CASE WHEN typeof(request) LIKE '%]'
    THEN _td_route_vector(try_cast(request AS FLOAT[]), optimize_for::VARCHAR, required_capabilities::VARCHAR[],
        max_cost::DOUBLE, max_latency_ms::DOUBLE, min_quality::DOUBLE, excluded_agents::VARCHAR[],
        budget_remaining::DOUBLE)
    ELSE _td_route_text(try_cast(request AS VARCHAR), optimize_for::VARCHAR, required_capabilities::VARCHAR[],
        max_cost::DOUBLE, max_latency_ms::DOUBLE, min_quality::DOUBLE, excluded_agents::VARCHAR[],
        budget_remaining::DOUBLE)
    END;

CREATE OR REPLACE MACRO ruvector_route(request, optimize_for := 'balanced', required_capabilities := NULL,
        max_cost := NULL, max_latency_ms := NULL, min_quality := NULL, excluded_agents := NULL,
        budget_remaining := NULL) AS TABLE
    -- the subquery makes DuckDB call the UDF once, not once per unnested field
    SELECT unnest(decision) FROM (SELECT ruvector_route(request, optimize_for := optimize_for,
        required_capabilities := required_capabilities, max_cost := max_cost, max_latency_ms := max_latency_ms,
        min_quality := min_quality, excluded_agents := excluded_agents, budget_remaining := budget_remaining)
        AS decision);
