"""Route classifier: kernels, store round trip and versions, SQL classify/train, bad input, the packaged default."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tinydancer_duck as td
from tinydancer_duck.errors import InvalidArgument, ModelError, NotFound
from tinydancer_duck.learn._classifier import RouteClassifier, capability_match
from tinydancer_duck.learn._classify import KIND, default_classifier, train_classifier
from tinydancer_duck.learn._fastgrnn import init_params
from tinydancer_duck.store import save_model

INTENTS = {
    "weather": ["will it rain tomorrow", "what is the weather forecast", "is it sunny outside today",
                "how cold will it be tonight", "do i need an umbrella", "weather report for the weekend",
                "is there snow expected", "what's the temperature right now"],
    "music": ["play some jazz music", "put on my favorite song", "skip this track", "play the latest album",
              "turn up the music volume", "shuffle my playlist", "play songs by the beatles", "start the radio"],
    "cooking": ["how do i bake bread", "give me a pasta recipe", "how long to boil an egg",
                "what can i cook with chicken", "recipe for chocolate cake", "how to roast vegetables",
                "best way to grill salmon", "how much salt in soup"],
}


def _synthetic(repeat: int = 6) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for r in range(repeat):
        for label, examples in INTENTS.items():
            for text in examples:
                texts.append(text if r == 0 else f"{text} please" if r % 2 else f"hey {text}")
                labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An engine on a fresh store with one trained 'intents' model (version 1)."""
    engine = td.Engine(tmp_path_factory.mktemp("store"))
    texts, labels = _synthetic()
    report = engine.classifier.train(texts, labels, model="intents", hidden_dim=16, epochs=40, random_state=3)
    return engine, report


def _model_rows(engine) -> pa.Table:
    return engine.store.read("models")


# -- kernels ------------------------------------------------------------------------------------------------------
def _random_model(d: int = 12, h: int = 8, c: int = 7, identity: str = "test") -> RouteClassifier:
    rng = np.random.default_rng(0)
    return RouteClassifier(init_params(d, h, random_state=1), rng.standard_normal((c, h)),
                           rng.standard_normal(c), tuple(f"c{i}" for i in range(c)), identity, 2.0)


def test_classify_sorted_and_probabilities_sum_to_one():
    model = _random_model()
    x = np.random.default_rng(1).standard_normal((50, 12)).astype(np.float32)
    probs = model.probabilities(x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    index, top = model.classify(x, top_k=5)
    assert index.shape == top.shape == (50, 5)
    assert (np.diff(top, axis=1) <= 0).all()
    np.testing.assert_array_equal(index[:, 0], probs.argmax(axis=1))
    np.testing.assert_array_equal(top, np.sort(probs, axis=1)[:, ::-1][:, :5])
    _, full = model.classify(x, top_k=100)  # k > C: all classes
    assert full.shape == (50, 7)
    np.testing.assert_allclose(full.sum(axis=1), 1.0, rtol=1e-5)


def test_classify_capabilities_threshold():
    model = _random_model()
    x = np.random.default_rng(2).standard_normal((40, 12)).astype(np.float32)
    logits = model.logits(x).astype(np.float64)
    sigmoid = 1.0 / (1.0 + np.exp(-logits))
    rows, cols, probs = model.classify_capabilities(x, threshold=0.5)
    expected = {(int(i), int(j)) for i, j in zip(*np.nonzero(sigmoid > 0.5))}
    assert set(zip(rows.tolist(), cols.tolist())) == expected
    np.testing.assert_allclose(probs, sigmoid[rows, cols], rtol=1e-5)
    for i in np.unique(rows):  # sorted by probability within each row
        assert (np.diff(probs[rows == i]) <= 0).all()
    rows_hi, _, _ = model.classify_capabilities(x, threshold=0.9)
    assert len(rows_hi) == int((sigmoid > 0.9).sum()) < len(rows)


def test_capability_match_is_probability_mass_on_agent_capabilities():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    labels = ["code", "math", "chat"]
    vocab = ["chat", "code", "travel"]
    has = np.array([[False, True, False],   # chat: agent 1
                    [True, True, False],    # code: agents 0, 1
                    [False, False, True]])  # travel: agent 2
    match = capability_match(probs, labels, has, vocab)
    np.testing.assert_allclose(match, [[0.7, 0.8, 0.0], [0.1, 0.9, 0.0]], rtol=1e-6)
    assert match.dtype == np.float32
    with pytest.raises(InvalidArgument, match="probabilities"):
        capability_match(probs, labels[:2], has, vocab)


# -- store: round trip, versions, errors -------------------------------------------------------------------------
def test_trained_model_round_trips_bit_identically(trained):
    engine, report = trained
    assert (report.model, report.version, report.n_classes) == ("intents", 1, 3)
    row = _model_rows(engine).filter(pa.compute.equal(_model_rows(engine)["name"], "intents")).to_pylist()[0]
    assert row["kind"] == KIND and row["labels"] == ["cooking", "music", "weather"]
    assert json.loads(row["metrics"])["embedder"] == engine.embedder.identity
    loaded = engine.classifier.load("intents", 1)
    assert loaded.to_bytes() == row["weights"]  # the stored npz bytes, re-serialized from the loaded model
    fresh = RouteClassifier.from_bytes(row["weights"])
    x = engine.embed(["play a song", "bake a cake", "rain tomorrow?"])
    np.testing.assert_array_equal(loaded.logits(x), fresh.logits(x))
    for name, array in fresh.cell.arrays.items():
        np.testing.assert_array_equal(array, loaded.cell.arrays[name])
    assert loaded.labels[int(loaded.probabilities(x[:1]).argmax())] == "music"


def test_versions_active_model_and_activate(tmp_path):
    engine = td.Engine(tmp_path)
    texts, labels = _synthetic(2)
    assert engine.classifier.active() is default_classifier()  # empty store: the packaged default
    first = engine.classifier.train(texts, labels, model="m", hidden_dim=8, epochs=3)
    second = engine.classifier.train(texts, labels, model="m", hidden_dim=8, epochs=3, random_state=5)
    other = engine.classifier.train(texts, labels, model="other", hidden_dim=8, epochs=3)
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert engine.classifier.active().metrics["name"] == "other"
    assert engine.classifier.load("m").metrics["version"] == 2
    assert engine.classifier.activate("m", 1) == 3
    active = engine.classifier.active()
    assert (active.metrics["name"], active.metrics["version"], active.metrics["activated_from"]) == ("m", 3, 1)
    assert active.to_bytes() == engine.classifier.load("m", 1).to_bytes()
    listing = engine.classifier.list().to_pylist()
    assert [(r["name"], r["version"], r["active"]) for r in listing] == [
        ("m", 3, True), ("other", 1, False), ("m", 2, False), ("m", 1, False)]
    with pytest.raises(NotFound, match="m version 9"):
        engine.classifier.load("m", 9)


def test_loading_another_dimension_or_embedder_is_a_model_error(tmp_path):
    engine = td.Engine(tmp_path)
    for model in (_random_model(d=64, identity=engine.embedder.identity),  # wrong dimension
                  _random_model(d=engine.dim, identity="hashing:512")):     # same dimension, other embedder
        save_model(engine.store, {"name": "foreign", "kind": KIND, "weights": model.to_bytes(),
                                 "labels": list(model.labels), "metrics": "{}"})
        with pytest.raises(ModelError, match="foreign.*trained on"):
            engine.classifier.load("foreign")
        with pytest.raises(ModelError, match="dimension"):
            engine.classifier.active()  # the newest model is active, and it does not fit
        assert engine.classifier.active_or_none() is None
        assert engine.snapshot().classifier is None  # the router matches by cosine instead
    with pytest.raises(ModelError, match="cannot load classifier"):
        RouteClassifier.from_bytes(b"not an npz")


def test_python_train_reports_progress_and_validates(tmp_path):
    engine = td.Engine(tmp_path)
    texts, labels = _synthetic(2)
    seen = []
    report = train_classifier(engine, texts, labels, model="p", hidden_dim=8, epochs=4, random_state=0,
                              progress=lambda epoch, total, metrics: seen.append((epoch, total, sorted(metrics))))
    assert [s[:2] for s in seen] == [(e, 4) for e in range(1, report.epochs_run + 1)]
    assert seen[0][2] == ["train_loss", "val_accuracy", "val_loss"]
    count = engine.store.count("models")
    bad = [({"hidden_dim": 0}, "hidden_dim=0"), ({"epochs": -1}, "epochs=-1"), ({"model": ""}, "model=''")]
    for kwargs, message in bad:
        with pytest.raises(InvalidArgument, match=message):
            train_classifier(engine, texts, labels, **{"model": "p", **kwargs})
    with pytest.raises(InvalidArgument, match="labels=None: 1 NULL"):
        train_classifier(engine, texts, labels[:-1] + [None], model="p")
    with pytest.raises(InvalidArgument, match="at least 2 distinct"):
        train_classifier(engine, texts, ["one"] * len(texts), model="p")
    with pytest.raises(InvalidArgument, match="texts=None: 1 NULL or empty"):
        train_classifier(engine, texts[:-1] + [""], labels, model="p")
    assert engine.store.count("models") == count


# -- SQL ----------------------------------------------------------------------------------------------------------
def _assert_same_classifications(got: list, expected: list) -> None:
    """Same rows, labels and order; probabilities equal to float32 rounding (DuckDB's 2048-row batches run BLAS
    at one thread, one 5,000-row Python call may not, and a GEMM's summation order changes the last bits)."""
    assert len(got) == len(expected)
    for row, (g, e) in enumerate(zip(got, expected)):
        assert (g is None) == (e is None), row
        if g is None:
            continue
        assert g["top_category"] == e["top_category"], row
        assert [c["label"] for c in g["classifications"]] == [c["label"] for c in e["classifications"]], row
        np.testing.assert_allclose([c["probability"] for c in g["classifications"]] + [g["confidence"]],
                                   [c["probability"] for c in e["classifications"]] + [e["confidence"]],
                                   rtol=1e-5, atol=1e-7, err_msg=f"row {row}")


def test_sql_classify_5000_rows_with_nulls_matches_one_python_call(tmp_path):
    engine = td.Engine(tmp_path)
    con = engine.connect()
    rng = np.random.default_rng(0)
    pool = [t for examples in INTENTS.values() for t in examples] + ["what is my bank balance", "book a flight"]
    texts = [None if i % 97 == 0 else pool[int(rng.integers(len(pool)))] + f" {i % 13}" for i in range(5000)]
    requests_arrow = pa.table({"id": np.arange(5000), "content": pa.array(texts, pa.string())})  # noqa: F841
    con.execute("CREATE TABLE requests AS SELECT * FROM requests_arrow")
    rows = con.sql("SELECT id, ruvector_classify_request(content) AS c FROM requests ORDER BY id").to_arrow_table()
    got = rows["c"].combine_chunks()
    expected = engine.classify_struct(pa.array(texts, pa.string()))
    _assert_same_classifications(got.to_pylist(), expected.to_pylist())
    values = got.to_pylist()
    assert all((v is None) == (t is None) for v, t in zip(values, texts))
    first = next(v for v in values if v is not None)
    assert len(first["classifications"]) == 5 and first["top_category"] == first["classifications"][0]["label"]
    assert first["confidence"] == first["classifications"][0]["probability"]
    # an embedding argument (FLOAT[N] or FLOAT[]) gives the text's answer
    by_vector = con.execute("SELECT ruvector_classify_request(ruvector_embed('what is my bank balance')), "
                            "ruvector_classify_request(ruvector_embed('what is my bank balance')::FLOAT[]), "
                            "ruvector_classify_request('what is my bank balance')").fetchone()
    assert by_vector[0] == by_vector[1] == by_vector[2]


def test_default_model_answers_banking():
    model = default_classifier()
    assert model.n_classes == 150 and model.metrics["clinc150_val_accuracy"] > 0.9
    x = td.make_embedder("static").embed(["what is my bank balance", "how much money is in my checking account"])
    index, _ = model.classify(x)
    assert [model.labels[i] for i in index[:, 0]] == ["balance", "balance"]


def test_default_model_in_sql_on_an_empty_store(tmp_path):
    con = td.connect(tmp_path)
    top, confidence = con.execute("SELECT c.top_category, c.confidence FROM "
                                  "(SELECT ruvector_classify_request('what is my bank balance') AS c)").fetchone()
    assert top == "balance" and confidence > 0.5
    assert con.execute("SELECT ruvector_classify_request(NULL), ruvector_classify_request('  ')").fetchone() == (
        None, None)
    assert con.execute("SELECT count(*) FROM ruvector_list_models()").fetchone()[0] == 0


def test_sql_training_on_parquet_becomes_active(tmp_path):
    texts, labels = _synthetic()
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"utterance": texts, "intent": labels}), path)
    con = td.connect(tmp_path / "store")
    row = con.execute(f"SELECT * FROM ruvector_train_classifier(source := '{path}', text_column := 'utterance', "
                      "label_column := 'intent', model := 'intents', hidden_dim := 32, epochs := 40)").fetchall()
    names = [d[0] for d in con.description]
    report = dict(zip(names, row[0]))
    assert report["model"] == "intents" and report["version"] == 1 and report["n_classes"] == 3
    assert report["train_accuracy"] >= 0.95 and report["validation_accuracy"] >= 0.9
    assert 1 <= report["epochs_run"] <= 40 and report["seconds"] > 0
    answers = con.execute("SELECT ruvector_classify_request(q).top_category FROM (VALUES ('play a jazz song'), "
                          "('is it going to rain'), ('a recipe for soup')) v(q)").fetchall()
    assert [a[0] for a in answers] == ["music", "weather", "cooking"]
    models = con.execute("SELECT name, version, kind, n_labels, active FROM ruvector_list_models()").fetchall()
    assert models == [("intents", 1, KIND, 3, True)]
    # a table source with embedding rows trains too, as the next version
    con.execute(f"CREATE TABLE emb AS SELECT ruvector_embed(utterance) AS e, intent FROM '{path}'")
    again = con.execute("SELECT version FROM ruvector_train_classifier('emb', text_column := 'e', "
                        "label_column := 'intent', model := 'intents', hidden_dim := 16, epochs := 5)").fetchone()
    assert again == (2,)


@pytest.mark.parametrize(("args", "message"), [
    ("text_column := 'nope'", "invalid text_column='nope': is not a column"),
    ("label_column := 'nope'", "invalid label_column='nope': is not a column"),
    ("hidden_dim := 0", "invalid hidden_dim=0"),
    ("epochs := 0", "invalid epochs=0"),
    ("label_column := 'one_class'", "invalid label_column=['a']: needs at least 2 distinct labels"),
    ("label_column := 'with_null'", "invalid label_column=None: 1 NULL label"),
])
def test_sql_training_bad_input_names_the_argument_and_stores_nothing(tmp_path, args, message):
    con = td.connect(tmp_path)
    texts, labels = _synthetic(1)
    source_table = pa.table({"text": texts, "label": labels, "one_class": ["a"] * len(texts),  # noqa: F841
                      "with_null": labels[:-1] + [None]})
    con.execute("CREATE TABLE t AS SELECT * FROM source_table")
    with pytest.raises(Exception, match=message.replace("[", r"\[").replace("]", r"\]")):
        con.execute(f"SELECT * FROM ruvector_train_classifier('t', {args})").fetchall()
    assert con.execute("SELECT count(*) FROM ruvector_list_models()").fetchone()[0] == 0


def test_sql_training_on_an_empty_source(tmp_path):
    con = td.connect(tmp_path)
    con.execute("CREATE TABLE empty (text VARCHAR, label VARCHAR)")
    with pytest.raises(Exception, match="invalid source='empty': has no rows"):
        con.execute("SELECT * FROM ruvector_train_classifier('empty')").fetchall()
    assert con.execute("SELECT count(*) FROM ruvector_list_models()").fetchone()[0] == 0
