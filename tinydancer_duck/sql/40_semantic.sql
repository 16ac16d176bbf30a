-- Generated from the declarations in tinydancer_duck/options by `python -m tinydancer_duck.udfs`;
-- edit those, not this file (tests/test_surfaces.py checks it).
-- Semantic routes (tinydancer_duck/udfs/semantic.py -> tinydancer_duck/semantic/). Queries and examples may be
-- text or an embedding (FLOAT[N], FLOAT[], DOUBLE[]). ts may be TIMESTAMP (read as UTC), TIMESTAMPTZ or a
-- string; it reaches the UDF as µs since the epoch, so the session TimeZone never shifts it. NULL ts means now.

-- Create or replace a semantic route (upsert by name); true per row.
CREATE OR REPLACE MACRO ruvector_create_route(name, description, target_agent, priority := 0, embedding := NULL,
        min_similarity := NULL, conditions := NULL) AS
    _td_create_route(name::VARCHAR, description::VARCHAR, target_agent::VARCHAR, priority::DOUBLE,
        embedding::FLOAT[], min_similarity::DOUBLE, _td_json_text(conditions));

-- Delete a route; an error if it does not exist.
CREATE OR REPLACE MACRO ruvector_delete_route(name) AS
    _td_delete_route(name::VARCHAR);

-- Every route with its threshold, conditions, examples and whether its target is registered.
CREATE OR REPLACE MACRO ruvector_list_routes() AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_list_routes() AS rows);

-- Add an utterance to a route; a route scores a request by the max over its utterances.
CREATE OR REPLACE MACRO ruvector_add_route_example(route_name, example) AS
    _td_add_route_example(route_name::VARCHAR, _td_request_text(example), _td_request_vector(example));

-- The routes a query matches, best first: LIST(STRUCT(route_name, similarity, target_agent, confidence,
-- target_registered)) per row; the table form gives one row per route of one query.
CREATE OR REPLACE MACRO ruvector_semantic_route(query, top_k := 3, ts := NULL, user_tier := NULL) AS
    _td_semantic_route(_td_request_text(query), _td_request_vector(query), top_k::BIGINT, _td_epoch_us(ts),
        user_tier::VARCHAR);
CREATE OR REPLACE MACRO ruvector_semantic_route(query, top_k := 3, ts := NULL, user_tier := NULL) AS TABLE
    SELECT unnest(matches, recursive := true) FROM (SELECT _td_semantic_route(_td_request_text(query),
        _td_request_vector(query), top_k::BIGINT, _td_epoch_us(ts), user_tier::VARCHAR) AS matches);

-- Learn each route's min_similarity from labeled rows (NULL route = out of scope): per-route precision, recall,
-- F1, accuracy and out-of-scope recall.
CREATE OR REPLACE MACRO ruvector_fit_routes(source, text_column := 'text', route_column := 'route',
        out_of_scope_weight := 1.0) AS TABLE
    SELECT unnest(report, recursive := true) FROM (SELECT _td_fit_routes(out_of_scope_weight::DOUBLE,
        list({'query': struct_extract(s, text_column)::VARCHAR, 'route': struct_extract(s,
        route_column)::VARCHAR})) AS report FROM query_table(source) s);
