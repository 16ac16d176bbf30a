"""The route classifier: classify text or embedding rows (top classes, or multi-label capabilities), train from a
table or file, list models, activate one."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tinydancer_duck.learn import CLASSIFY_TYPE, LABEL_PROB, TrainReport
from tinydancer_duck.options import SIGNATURES

from ._bind import TABLE_OF_ROWS, Adapter, Binding, Call

if TYPE_CHECKING:
    from tinydancer_duck.engine import Engine

TITLE = "Route classifier (tinydancer_duck/udfs/learn.py -> tinydancer_duck/learn/_classify.py)."
_REPORT_TYPES = {"int": pa.int64(), "float": pa.float64(), "str": pa.string()}
REPORT_TYPE = pa.struct([(f.name, _REPORT_TYPES[str(getattr(f.type, "__name__", f.type))])
                         for f in fields(TrainReport)])
MODEL_TYPE = pa.struct([("name", pa.string()), ("version", pa.int64()), ("kind", pa.string()),
                        ("n_labels", pa.int64()), ("metrics", pa.string()),
                        ("created_at", pa.timestamp("us", tz="UTC")), ("active", pa.bool_())])
#: The training rows: the source's text and label columns picked with COLUMNS(lambda ...) beside a NULL pad column,
#: so a missing column reaches the UDF as type "NULL" and is reported by name instead of failing to bind.
_TRAIN_ROWS = ("SELECT unnest(report, max_depth := 2) FROM (SELECT {call} AS report FROM (SELECT "
               "struct_extract_at(row(*COLUMNS(lambda c: c = text_column OR c = '__td_pad__')), 1) AS x, "
               "struct_extract_at(row(*COLUMNS(lambda c: c = label_column OR c = '__td_pad__')), 1) AS y "
               "FROM (SELECT *, NULL AS __td_pad__ FROM query_table(source::VARCHAR))))")
_TRAIN_COLUMNS = (
    ("n_rows", "BIGINT", "count(*)"),
    ("text_type", "VARCHAR", "any_value(typeof(x))"),
    ("label_type", "VARCHAR", "any_value(typeof(y))"),
    ("texts", "VARCHAR[]", "CASE WHEN any_value(typeof(x)) LIKE '%]' THEN NULL ELSE list(try_cast(x AS VARCHAR)) END"),
    ("vectors", "FLOAT[][]", ("CASE WHEN any_value(typeof(x)) LIKE '%]' THEN list(try_cast(x AS FLOAT[])) ELSE NULL "
                             "END")),
    ("labels", "VARCHAR[]", "list(try_cast(y AS VARCHAR))"),
)

BINDINGS = (
    Binding(SIGNATURES["ruvector_classify_request"], scalar=Call("_td_classify", CLASSIFY_TYPE)),
    Binding(SIGNATURES["ruvector_classify_capabilities"],
            scalar=Call("_td_classify_capabilities", pa.list_(LABEL_PROB))),
    Binding(SIGNATURES["ruvector_train_classifier"],
            table=Call("_td_train_classifier", pa.list_(REPORT_TYPE), _TRAIN_ROWS, extra=_TRAIN_COLUMNS,
                       side_effects=True)),
    Binding(SIGNATURES["ruvector_list_models"],
            table=Call("_td_list_models", pa.list_(MODEL_TYPE), TABLE_OF_ROWS, side_effects=True)),
    Binding(SIGNATURES["ruvector_activate_classifier"],
            scalar=Call("_td_activate_classifier", "BIGINT", side_effects=True)),
)


def adapters(engine: Engine) -> dict[str, Adapter]:
    service = engine.classifier

    def classify(content: pa.Array) -> pa.Array:
        return engine.classify_struct(content)

    def capabilities(content: pa.Array, threshold: pa.Array) -> pa.Array:
        return service.capabilities_list(content, threshold)

    def train(source: str, text_column: str, label_column: str, model: str, n_rows: pa.Array, text_type: pa.Array,
              label_type: pa.Array, texts: pa.Array, vectors: pa.Array, labels: pa.Array, **training: Any) -> pa.Array:
        """The source's rows, aggregated by the macro into one row of lists (kept as Arrow). Takes many parameters
        because the macro hands the aggregated columns over one by one."""
        report = service.train_columns(source=source, text_column=text_column, label_column=label_column,
                                       n_rows=n_rows[0].as_py(), text_type=text_type[0].as_py(),
                                       label_type=label_type[0].as_py(), texts=texts[0].values,
                                       vectors=vectors[0].values, labels=labels[0].values, model=model, **training)
        return pa.array([[asdict(report)]], pa.list_(REPORT_TYPE))

    def list_models() -> pa.Table:
        return service.list()

    def activate(name: str, version: int | None) -> int:
        return service.activate(name, version)

    return {"_td_classify": classify, "_td_classify_capabilities": capabilities, "_td_train_classifier": train,
            "_td_list_models": list_models, "_td_activate_classifier": activate}
