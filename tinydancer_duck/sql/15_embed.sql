-- Embedding (udfs/embed.py, tinydancer_duck/embed/): the active embedder's unit vector of a text, FLOAT[D].
CREATE OR REPLACE MACRO ruvector_embed(text) AS _td_embed(text::VARCHAR);
