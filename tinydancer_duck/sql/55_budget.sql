-- Generated from the declarations in tinydancer_duck/options by `python -m tinydancer_duck.udfs`;
-- edit those, not this file (tests/test_surfaces.py checks it).
-- Budgets (tinydancer_duck/udfs/usage.py -> tinydancer_duck/budget/).

-- Set or replace a budget; true per row.
CREATE OR REPLACE MACRO ruvector_set_budget(amount, agent := NULL, period := 'month') AS
    _td_set_budget(amount::DOUBLE, agent::VARCHAR, period::VARCHAR);

-- Remove a budget; false if there was none.
CREATE OR REPLACE MACRO ruvector_remove_budget(agent := NULL) AS
    _td_remove_budget(agent::VARCHAR);

-- scope, agent, period, budget, spent, remaining, period_start, period_end for every budget at now.
CREATE OR REPLACE MACRO ruvector_budget_status(now := NULL) AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_budget_status(_td_epoch_us(now)) AS rows);

-- Allocate a monthly budget across agents from demand per category: rows of kind 'agent' per funded agent, then
-- one 'unserved' and one 'unallocated' row; columns kind, agent, categories, expected_requests, allocation,
-- expected_spend, expected_quality, share.
CREATE OR REPLACE MACRO ruvector_optimize_budget(monthly_budget, quality_threshold := 0.8,
        latency_threshold_ms := 5000, demand := NULL, period_days := 30) AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_optimize_budget(monthly_budget::DOUBLE,
        quality_threshold::DOUBLE, latency_threshold_ms::DOUBLE, demand::VARCHAR, period_days::DOUBLE) AS rows);
