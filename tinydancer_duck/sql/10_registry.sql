-- Generated from the declarations in tinydancer_duck/options by `python -m tinydancer_duck.udfs`;
-- edit those, not this file (tests/test_surfaces.py checks it).
-- Agent registry (tinydancer_duck/udfs/registry.py -> tinydancer_duck/registry/): the seed's names and named
-- parameters.

-- Register or replace agents (vectorized: one write per batch of rows); true per row. Beyond the seed's
-- parameters: a description and example requests (matching uses them with the capabilities), the context window
-- and the largest output in tokens.
CREATE OR REPLACE MACRO ruvector_register_agent(name, agent_type, capabilities, cost_per_1k_tokens := NULL,
        cost_per_call := NULL, cost_per_second := NULL, avg_latency_ms := NULL, quality_score := NULL,
        metadata := NULL, description := NULL, examples := NULL, context_window := NULL, max_output_tokens := NULL,
        scope := NULL) AS
    _td_register_agent(name::VARCHAR, agent_type::VARCHAR, capabilities::VARCHAR[], cost_per_1k_tokens::DOUBLE,
        cost_per_call::DOUBLE, cost_per_second::DOUBLE, avg_latency_ms::DOUBLE, quality_score::DOUBLE,
        _td_json_text(metadata), description::VARCHAR, examples::VARCHAR[], context_window::BIGINT,
        max_output_tokens::BIGINT, scope::VARCHAR);

-- Register one agent from a JSON config holding any agent field, the learned ones included.
CREATE OR REPLACE MACRO ruvector_register_agent_full(config) AS
    _td_register_agent_full(config::VARCHAR);

-- Every agent, sorted by name.
CREATE OR REPLACE MACRO ruvector_list_agents() AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_list_agents() AS rows);

-- Register every agent of an outcome log (wide like RouterBench, or long), priced and scored by the log: one row
-- per agent (name, observed, quality_score, cost_per_call or cost_per_1k_tokens, avg_latency_ms).
CREATE OR REPLACE MACRO ruvector_import_agents(log, columns := NULL, agent_type := 'llm',
        capabilities := ['general']) AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_import_agents(log::VARCHAR, _td_json_text(columns),
        agent_type::VARCHAR, capabilities::VARCHAR[]) AS rows);

-- One agent as a STRUCT, NULL if unknown.
CREATE OR REPLACE MACRO ruvector_get_agent(name) AS
    _td_get_agent(name::VARCHAR);

-- Delete an agent; an error if it does not exist.
CREATE OR REPLACE MACRO ruvector_remove_agent(name) AS
    _td_remove_agent(name::VARCHAR);

-- Switch an agent on or off; an error if it does not exist.
CREATE OR REPLACE MACRO ruvector_set_agent_active(name, is_active) AS
    _td_set_agent_active(name::VARCHAR, is_active::BOOLEAN);

-- Delete every agent; returns how many.
CREATE OR REPLACE MACRO ruvector_clear_agents() AS
    _td_clear_agents();

-- Agents holding a capability: exact holders first, then by embedding similarity.
CREATE OR REPLACE MACRO ruvector_find_agents_by_capability(capability, "limit" := 10) AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_find_agents_by_capability(capability::VARCHAR,
        "limit"::BIGINT) AS rows);

-- Fold an observed outcome into the agent's running stats (EWMA, alpha 0.1).
CREATE OR REPLACE MACRO ruvector_update_agent_metrics(name, latency_ms, success, quality := NULL) AS
    _td_update_agent_metrics(name::VARCHAR, latency_ms::DOUBLE, success::BOOLEAN, quality::DOUBLE);
