"""Classifier UDFs: classify text or embedding rows, train from aggregated columns, list models, activate one."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import TYPE_CHECKING

import pyarrow as pa

from tinydancer_duck.learn import CLASSIFY_TYPE, LABEL_PROB, TrainReport

from ._spec import UDF, arrow_sql_type, one_chunk

if TYPE_CHECKING:
    from tinydancer_duck.engine import Engine

_REPORT_TYPES = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}
REPORT_TYPE = pa.struct([(f.name, _REPORT_TYPES[str(getattr(f.type, "__name__", f.type))])
                         for f in fields(TrainReport)])
MODEL_TYPE = pa.struct([("name", pa.string()), ("version", pa.int64()), ("kind", pa.string()),
                        ("n_labels", pa.int64()), ("metrics", pa.string()),
                        ("created_at", pa.timestamp("us", tz="UTC")), ("active", pa.bool_())])
TRAIN_PARAMS = ("VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "VARCHAR", "VARCHAR", "VARCHAR[]", "FLOAT[][]", "VARCHAR[]",
                "VARCHAR", "BIGINT", "BIGINT", "DOUBLE", "DOUBLE", "BIGINT")


def udfs(engine: Engine) -> list[UDF]:
    service = engine.classifier

    def classify(content: pa.ChunkedArray) -> pa.Array:
        return engine.classify_struct(one_chunk(content))

    def capabilities(content: pa.ChunkedArray, threshold: pa.ChunkedArray) -> pa.Array:
        return service.capabilities_list(one_chunk(content), one_chunk(threshold))

    def train(source, text_column, label_column, n_rows, text_type, label_type, texts, vectors, labels, model, hidden_dim,
              epochs, learning_rate, weight_decay, random_state) -> pa.Array:
        def scalar(column):
            return one_chunk(column)[0].as_py()

        report = service.train_columns(
            source=scalar(source), text_column=scalar(text_column), label_column=scalar(label_column),
            n_rows=scalar(n_rows), text_type=scalar(text_type), label_type=scalar(label_type),
            texts=one_chunk(texts)[0].values,
            vectors=one_chunk(vectors)[0].values, labels=one_chunk(labels)[0].values, model=scalar(model),
            hidden_dim=scalar(hidden_dim), epochs=scalar(epochs), learning_rate=scalar(learning_rate),
            weight_decay=scalar(weight_decay), random_state=scalar(random_state))
        return pa.array([[asdict(report)]], pa.list_(REPORT_TYPE))

    def list_models() -> pa.Array:
        return pa.array([service.list().to_pylist()], pa.list_(MODEL_TYPE))

    def activate(name: pa.ChunkedArray, version: pa.ChunkedArray) -> pa.Array:
        return pa.array([service.activate(n, v) for n, v in zip(one_chunk(name).to_pylist(),
                                                                  one_chunk(version).to_pylist())], pa.int64())

    return [
        UDF("_td_classify_text", classify, ["VARCHAR"], arrow_sql_type(CLASSIFY_TYPE)),
        UDF("_td_classify_vector", classify, ["FLOAT[]"], arrow_sql_type(CLASSIFY_TYPE)),
        UDF("_td_classify_capabilities_text", capabilities, ["VARCHAR", "DOUBLE"], f"{arrow_sql_type(LABEL_PROB)}[]"),
        UDF("_td_classify_capabilities_vector", capabilities, ["FLOAT[]", "DOUBLE"],
            f"{arrow_sql_type(LABEL_PROB)}[]"),
        UDF("_td_train_classifier", train, TRAIN_PARAMS, f"{arrow_sql_type(REPORT_TYPE)}[]", side_effects=True),
        UDF("_td_list_models", list_models, [], f"{arrow_sql_type(MODEL_TYPE)}[]", side_effects=True),
        UDF("_td_activate_classifier", activate, ["VARCHAR", "BIGINT"], "BIGINT", side_effects=True),
    ]
