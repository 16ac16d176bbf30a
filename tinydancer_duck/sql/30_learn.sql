-- Route classifier (udfs/learn.py, tinydancer_duck/learn/_classify.py). The active classifier is the newest
-- saved model of kind 'route_classifier', else the default shipped in the package (CLINC150 intents).
--
-- ruvector_classify_request(content) -> STRUCT(classifications STRUCT(label, probability)[], top_category,
--   confidence): the top 5 classes by softmax probability, sorted; content is text or an embedding (FLOAT[N] or
--   FLOAT[]); NULL or blank content gives NULL. typeof() is constant per query, so only one UDF runs.
CREATE OR REPLACE MACRO ruvector_classify_request(content) AS
    CASE WHEN typeof(content) LIKE '%]'
    THEN _td_classify_vector(try_cast(content AS FLOAT[]))
    ELSE _td_classify_text(try_cast(content AS VARCHAR))
    END;

-- Multi-label: every class whose sigmoid probability exceeds threshold, sorted; STRUCT(label, probability)[].
CREATE OR REPLACE MACRO ruvector_classify_capabilities(content, threshold := 0.5) AS
    CASE WHEN typeof(content) LIKE '%]'
    THEN _td_classify_capabilities_vector(try_cast(content AS FLOAT[]), threshold::DOUBLE)
    ELSE _td_classify_capabilities_text(try_cast(content AS VARCHAR), threshold::DOUBLE)
    END;

-- SELECT * FROM ruvector_train_classifier(source := 'train.parquet', text_column := 'text',
--     label_column := 'label', model := 'intents', hidden_dim := 64, epochs := 30)
-- source: a table or view name, or a file path query_table() reads (Parquet, CSV, JSON). The text column holds
-- text or embeddings. Trains, saves the model as the next version of `model` (it becomes active) and returns one
-- row: model, version, train_accuracy, validation_accuracy, epochs_run, best_epoch, seconds, n_train,
-- n_validation, n_classes. Columns are picked with COLUMNS(lambda ...) next to a NULL pad column, so a missing
-- column reaches the UDF as type "NULL" and is reported by name instead of failing to bind.
CREATE OR REPLACE MACRO ruvector_train_classifier(source, text_column := 'text', label_column := 'label',
        model := 'default', hidden_dim := 64, epochs := 30, learning_rate := 0.001, weight_decay := 0.1,
        random_state := 0) AS TABLE
    SELECT unnest(report, max_depth := 2) FROM (
        SELECT _td_train_classifier(source::VARCHAR, text_column::VARCHAR, label_column::VARCHAR, count(*),
            any_value(typeof(x)), any_value(typeof(y)),
            CASE WHEN any_value(typeof(x)) LIKE '%]' THEN NULL ELSE list(try_cast(x AS VARCHAR)) END,
            CASE WHEN any_value(typeof(x)) LIKE '%]' THEN list(try_cast(x AS FLOAT[])) ELSE NULL END,
            list(try_cast(y AS VARCHAR)), model::VARCHAR, hidden_dim::BIGINT, epochs::BIGINT,
            learning_rate::DOUBLE, weight_decay::DOUBLE, random_state::BIGINT) AS report
        FROM (
            SELECT struct_extract_at(row(*COLUMNS(lambda c: c = text_column OR c = '__td_pad__')), 1) AS x,
                   struct_extract_at(row(*COLUMNS(lambda c: c = label_column OR c = '__td_pad__')), 1) AS y
            FROM (SELECT *, NULL AS __td_pad__ FROM query_table(source::VARCHAR))));

-- Saved models, newest first; `active` marks the one ruvector_classify_request uses (none: the packaged default).
CREATE OR REPLACE MACRO ruvector_list_models() AS TABLE
    SELECT unnest(models, max_depth := 2) FROM (SELECT _td_list_models() AS models);

-- Make a saved classifier active again (saves a copy as its newest version); returns that version.
CREATE OR REPLACE MACRO ruvector_activate_classifier(name, version := NULL) AS
    _td_activate_classifier(name::VARCHAR, version::BIGINT);
