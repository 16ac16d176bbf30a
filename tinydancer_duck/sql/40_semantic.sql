-- Semantic routes (udfs/semantic.py -> tinydancer_duck/semantic/_routes.py). Queries and examples may be text or an
-- embedding (FLOAT[N], FLOAT[], DOUBLE[]): typeof() is constant per query, so DuckDB folds the CASE and calls one
-- UDF. ts may be TIMESTAMP (read as UTC), TIMESTAMPTZ or a string; it reaches the UDF as µs since the epoch, so
-- the session TimeZone never shifts it. NULL ts means now.

CREATE OR REPLACE MACRO ruvector_create_route(name, description, target_agent, priority := 0, embedding := NULL,
        min_similarity := NULL, conditions := NULL) AS
    _td_create_route(name::VARCHAR, description::VARCHAR, target_agent::VARCHAR, priority::DOUBLE,
        embedding::FLOAT[], min_similarity::DOUBLE,
        _td_json_text(conditions));

CREATE OR REPLACE MACRO ruvector_delete_route(name) AS _td_delete_route(name::VARCHAR);

CREATE OR REPLACE MACRO ruvector_list_routes() AS TABLE
    SELECT unnest(routes, max_depth := 2) FROM (SELECT _td_list_routes() AS routes);

CREATE OR REPLACE MACRO ruvector_add_route_example(route_name, example) AS
    CASE WHEN typeof(example) LIKE '%]'
    THEN _td_add_route_example_vector(route_name::VARCHAR, try_cast(example AS FLOAT[]))
    ELSE _td_add_route_example_text(route_name::VARCHAR, try_cast(example AS VARCHAR)) END;

CREATE OR REPLACE MACRO ruvector_semantic_route(query, top_k := 3, ts := NULL, user_tier := NULL) AS
    CASE WHEN typeof(query) LIKE '%]'
    THEN _td_semantic_route_vector(try_cast(query AS FLOAT[]), top_k::BIGINT, _td_epoch_us(ts),
        user_tier::VARCHAR)
    ELSE _td_semantic_route_text(try_cast(query AS VARCHAR), top_k::BIGINT, _td_epoch_us(ts), user_tier::VARCHAR)
    END;

CREATE OR REPLACE MACRO ruvector_semantic_route(query, top_k := 3, ts := NULL, user_tier := NULL) AS TABLE
    SELECT unnest(matches, recursive := true) FROM (SELECT ruvector_semantic_route(query, top_k := top_k, ts := ts,
        user_tier := user_tier) AS matches);

-- source: a table or view name, or a file DuckDB can scan (Parquet/CSV/JSON path); a NULL label = no route.
-- out_of_scope_weight: weight of one out-of-scope example in the fitted accuracy (in-scope examples weigh 1).
CREATE OR REPLACE MACRO ruvector_fit_routes(source, text_column := 'text', route_column := 'route',
        out_of_scope_weight := 1.0) AS TABLE
    SELECT unnest(report, recursive := true) FROM (
        SELECT _td_fit_routes(list({'query': struct_extract(s, text_column)::VARCHAR,
                                    'route': struct_extract(s, route_column)::VARCHAR}),
            out_of_scope_weight::DOUBLE) AS report
        FROM query_table(source) s);
