-- Generated from the declarations in tinydancer_duck/options by `python -m tinydancer_duck.udfs`;
-- edit those, not this file (tests/test_surfaces.py checks it).
-- Embedding (tinydancer_duck/udfs/registry.py -> tinydancer_duck/embed/).

-- The active embedder's unit vector of a text (FLOAT[D]); NULL for NULL.
CREATE OR REPLACE MACRO ruvector_embed(text) AS
    _td_embed(text::VARCHAR);
