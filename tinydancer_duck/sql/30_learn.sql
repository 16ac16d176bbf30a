-- Generated from the declarations in tinydancer_duck/options by `python -m tinydancer_duck.udfs`;
-- edit those, not this file (tests/test_surfaces.py checks it).
-- Route classifier (tinydancer_duck/udfs/learn.py -> tinydancer_duck/learn/_classify.py).

-- The active classifier's top 5 classes: STRUCT(classifications STRUCT(label, probability)[], top_category,
-- confidence); NULL or blank content gives NULL. The active classifier is the newest saved model of kind
-- 'route_classifier', else the default shipped in the package (CLINC150 intents).
CREATE OR REPLACE MACRO ruvector_classify_request(content) AS
    _td_classify(_td_request_text(content), _td_request_vector(content));

-- Multi-label: every class whose sigmoid probability exceeds threshold, sorted; STRUCT(label, probability)[].
CREATE OR REPLACE MACRO ruvector_classify_capabilities(content, threshold := 0.5) AS
    _td_classify_capabilities(_td_request_text(content), _td_request_vector(content), threshold::DOUBLE);

-- Train a route classifier on (text or embedding, label) rows, save it as the next version of model (it becomes
-- active) and return one row: model, version, train_accuracy, validation_accuracy, epochs_run, best_epoch,
-- seconds, n_train, n_validation, n_classes.
CREATE OR REPLACE MACRO ruvector_train_classifier(source, text_column := 'text', label_column := 'label',
        model := 'default', hidden_dim := 64, epochs := 30, learning_rate := 0.001, weight_decay := 0.1,
        random_state := 0) AS TABLE
    SELECT unnest(report, max_depth := 2) FROM (SELECT _td_train_classifier(source::VARCHAR, text_column::VARCHAR,
        label_column::VARCHAR, model::VARCHAR, hidden_dim::BIGINT, epochs::BIGINT, learning_rate::DOUBLE,
        weight_decay::DOUBLE, random_state::BIGINT, count(*), any_value(typeof(x)), any_value(typeof(y)),
        CASE WHEN any_value(typeof(x)) LIKE '%]' THEN NULL ELSE list(try_cast(x AS VARCHAR)) END,
        CASE WHEN any_value(typeof(x)) LIKE '%]' THEN list(try_cast(x AS FLOAT[])) ELSE NULL END,
        list(try_cast(y AS VARCHAR))) AS report FROM (SELECT struct_extract_at(row(*COLUMNS(lambda c: c = text_column OR c = '__td_pad__')),
        1) AS x, struct_extract_at(row(*COLUMNS(lambda c: c = label_column OR c = '__td_pad__')),
        1) AS y FROM (SELECT *, NULL AS __td_pad__ FROM query_table(source::VARCHAR))));

-- Saved models, newest first; active marks the one ruvector_classify_request uses.
CREATE OR REPLACE MACRO ruvector_list_models() AS TABLE
    SELECT unnest(rows, max_depth := 2) FROM (SELECT _td_list_models() AS rows);

-- Make a saved classifier active again (saves a copy as its newest version); returns that version.
CREATE OR REPLACE MACRO ruvector_activate_classifier(name, version := NULL) AS
    _td_activate_classifier(name::VARCHAR, version::BIGINT);
