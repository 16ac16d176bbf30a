-- Helpers shared by the SQL surface (written by hand; the other files are generated from the declarations).

-- A timestamp argument as microseconds since the epoch (UTC), so the session TimeZone never shifts it: a TIMESTAMPTZ
-- as is, text with an explicit offset or Z by that offset, anything else (naive TIMESTAMP, plain text) as UTC.
CREATE OR REPLACE MACRO _td_epoch_us(ts) AS
    CASE WHEN typeof(ts) = 'TIMESTAMP WITH TIME ZONE' THEN epoch_us(ts::TIMESTAMPTZ)
    WHEN typeof(ts) = 'VARCHAR' AND regexp_matches(ts::VARCHAR, '([+-]\d\d(:?\d\d)?|[zZ])$')
        THEN epoch_us(ts::VARCHAR::TIMESTAMPTZ)
    ELSE epoch_us(ts::TIMESTAMP) END;

-- A JSON argument as text: a STRUCT or MAP literal becomes its JSON, text passes through.
CREATE OR REPLACE MACRO _td_json_text(value) AS
    CASE WHEN typeof(value) LIKE 'STRUCT%' OR typeof(value) LIKE 'MAP%' THEN to_json(value)::VARCHAR
    ELSE value::VARCHAR END;

-- A request (or any text-or-embedding argument) as text (NULL when it is an embedding) and as an embedding (NULL
-- when it is not): one UDF takes both, the matching one filled (typeof() is constant per query). A CASE choosing
-- between two UDFs made DuckDB call both on a constant request.
CREATE OR REPLACE MACRO _td_request_text(request) AS
    CASE WHEN typeof(request) LIKE '%]' THEN NULL ELSE try_cast(request AS VARCHAR) END;
CREATE OR REPLACE MACRO _td_request_vector(request) AS
    CASE WHEN typeof(request) LIKE '%]' THEN try_cast(request AS FLOAT[]) END;

-- A moment given as a timestamp or as a word ('now'): the word as text, a timestamp as its µs since the epoch (UTC)
-- in text, so one VARCHAR argument carries either.
CREATE OR REPLACE MACRO _td_moment(moment) AS
    CASE WHEN moment IS NULL THEN NULL WHEN typeof(moment) = 'VARCHAR' THEN moment::VARCHAR
    ELSE _td_epoch_us(moment)::VARCHAR END;
