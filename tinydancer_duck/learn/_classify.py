"""The classifier service: train, save (versioned), load, list, activate and apply route classifiers.

Which classifier is active: the newest row of kind ``route_classifier`` in the store's ``models`` table (latest
``created_at``, then highest version); with none saved, the default model shipped in the package
(``tinydancer_duck/data/default_classifier.npz``, CLINC150 intents, static embedder; rebuilt by
``tinydancer_duck/datasets/build_default_classifier.py``). Saving a model therefore makes it active, and :meth:`Classifiers.activate`
re-activates an older one by saving a copy of it as the newest version. The active model is deserialized once per
``models`` table version (the store's snapshot cache), not per batch.

A model refuses vectors from another embedder or dimension with a ModelError, so an engine whose embedder differs
from the default model's (e.g. ``hashing``) has no active classifier until it trains one; :meth:`active_or_none`
lets the router fall back to cosine matching then.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck._numeric import normalize_random_state, validation_split
from tinydancer_duck._validate import (
    as_float_column,
    as_texts,
    check_int,
    check_names,
    check_text,
)
from tinydancer_duck.embed import Embedder, embedding_matrix, is_vector_input, nonzero_rows
from tinydancer_duck.errors import InvalidArgument, ModelError, NotFound
from tinydancer_duck.options import FastGRNNConfig, Text
from tinydancer_duck.settings import Settings
from tinydancer_duck.store import Store, named_row, newest_order, newest_row, save_model

from ._classifier import RouteClassifier, capabilities_arrow
from ._train import train

__all__ = ["DEFAULT_MODEL_PATH", "KIND", "Classifiers", "TrainReport", "default_classifier", "fit", "train_classifier"]

KIND = "route_classifier"
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "data" / "default_classifier.npz"
DEFAULT_NAME = "default (packaged)"
Progress = Callable[[int, int, dict[str, float]], None]



@dataclass(frozen=True)
class TrainReport:
    """What ``ruvector_train_classifier`` returns: the saved model's name and version, accuracies on the training
    rows and the held-out validation rows, epochs run (early stopping may end before ``epochs``), wall seconds."""

    model: str
    version: int
    train_accuracy: float
    validation_accuracy: float
    epochs_run: int
    best_epoch: int
    seconds: float
    n_train: int
    n_validation: int
    n_classes: int


@lru_cache(maxsize=1)
def default_classifier() -> RouteClassifier:
    """The packaged default model (loaded once per process)."""
    try:
        data = DEFAULT_MODEL_PATH.read_bytes()
    except OSError as exc:
        raise ModelError(f"the packaged default classifier is missing: {exc}") from exc
    model = RouteClassifier.from_bytes(data, source=str(DEFAULT_MODEL_PATH))
    metrics = dict(model.metrics, name=DEFAULT_NAME, version=0)
    return RouteClassifier(model.cell, model.head_weight, model.head_bias, model.labels, model.embedder,
                           model.input_scale, metrics)


def row_model(row: dict[str, Any]) -> RouteClassifier:
    """The classifier a ``models`` row holds (its name and version in ``metrics``)."""
    metrics = json.loads(row["metrics"]) if row.get("metrics") else {}
    metrics.update(name=row["name"], version=int(row["version"]))
    return RouteClassifier.from_bytes(row["weights"], metrics=metrics, source=f"{row['name']!r} version {row['version']}")


class Classifiers:
    """Route classifiers of one store, for one embedder."""

    def __init__(self, store: Store, embedder: Embedder, settings: Settings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings

    # -- which model --------------------------------------------------------------------------------------------
    def _models(self) -> pa.Table:
        return self.store.read("models")

    def _newest(self, table: pa.Table) -> RouteClassifier | None:
        row = newest_row(table, KIND)
        return None if row is None else row_model(row)

    def newest(self) -> RouteClassifier:
        """The active model (module docstring), whichever embedder it was trained on."""
        return self.store.snapshot("models", "classifier:active", self._newest) or default_classifier()

    def active(self) -> RouteClassifier:
        """The active model (module docstring); ModelError if it does not fit this engine's embedder."""
        model = self.newest()
        model.check_embedder(self.embedder.identity, self.embedder.dim, name=model.display_name)
        return model

    def active_or_none(self) -> RouteClassifier | None:
        """The active model, or None when it does not fit this engine's embedder (the router then uses cosine)."""
        try:
            return self.active()
        except ModelError:
            return None

    def load(self, name: str, version: int | None = None) -> RouteClassifier:
        """A saved model by name (newest version unless ``version``); NotFound, or ModelError on an embedder
        mismatch. Cached per models-table version."""
        check_names("model", [name])
        if version is not None:
            version = check_int("version", version, minimum=1)

        def build(table: pa.Table) -> RouteClassifier | None:
            row = named_row(table, name, version)
            return None if row is None else row_model(row)

        model = self.store.snapshot("models", f"classifier:{name}:{version}", build)
        if model is None:
            raise NotFound("model", name if version is None else f"{name} version {version}")
        model.check_embedder(self.embedder.identity, self.embedder.dim, name=model.display_name)
        return model

    def save(self, model: RouteClassifier, name: str) -> int:
        """Save as the next version of ``name`` (it becomes the active model); returns the version."""
        check_names("model", [name])
        model.check_embedder(self.embedder.identity, self.embedder.dim, name=repr(name))
        metrics = dict(model.metrics, embedder=model.embedder, dim=model.dim, hidden_dim=model.hidden_dim,
                       n_classes=model.n_classes)
        metrics.pop("name", None)
        metrics.pop("version", None)
        return save_model(self.store, {"name": name, "kind": KIND, "weights": model.to_bytes(),
                                      "labels": list(model.labels), "metrics": json.dumps(metrics, sort_keys=True)})

    def activate(self, name: str, version: int | None = None) -> int:
        """Make a saved model active again by saving a copy of it as the newest version; returns that version."""
        model = self.load(name, version)
        copy = RouteClassifier(model.cell, model.head_weight, model.head_bias, model.labels, model.embedder,
                               model.input_scale, dict(model.metrics, activated_from=model.metrics["version"]))
        return self.save(copy, name)

    def list(self) -> pa.Table:
        """Saved models, newest first: name, version, kind, n_labels, metrics (JSON), created_at, active."""
        table = self._models()
        table = table.take(newest_order(table))
        first = np.zeros(table.num_rows, bool)
        kinds = table["kind"].to_pylist()
        if KIND in kinds:
            first[kinds.index(KIND)] = True
        return pa.table({
            "name": table["name"], "version": table["version"], "kind": table["kind"],
            "n_labels": pc.list_value_length(table["labels"]).cast(pa.int64()),
            "metrics": table["metrics"], "created_at": table["created_at"], "active": pa.array(first),
        })

    # -- inference ----------------------------------------------------------------------------------------------
    def embeddings(self, requests: Any, argument: str = "content") -> tuple[np.ndarray, np.ndarray]:
        """(x float32 (n, D), valid bool (n,)) from texts (Arrow strings or a list) or embeddings (numpy or Arrow
        lists); NULL, blank and all-zero rows are invalid."""
        if isinstance(requests, pa.ChunkedArray):
            requests = requests.combine_chunks() if requests.num_chunks != 1 else requests.chunk(0)
        if is_vector_input(requests):
            return embedding_matrix(requests, self.embedder.dim, argument=argument)
        if isinstance(requests, str):
            raise InvalidArgument(argument, requests, "pass a list of texts, not one string")
        x = self.embedder.embed(requests if isinstance(requests, pa.Array) else as_texts(argument, requests))
        return x, nonzero_rows(x)

    def capabilities_list(self, requests: Any, threshold: Any = 0.5) -> pa.ListArray:
        """Multi-label: (label, probability)[] with sigmoid probability > threshold, sorted; NULL rows NULL.

        threshold : a number in [0, 1), or one per request (Arrow/numpy column)
        """
        x, valid = self.embeddings(requests)
        limit = as_float_column("threshold", threshold, len(valid))
        bad = ~((limit >= 0.0) & (limit < 1.0))
        if bad.any():
            raise InvalidArgument("threshold", float(limit[bad][0]), "must lie in [0, 1)")
        model = self.active()
        rows, index, probs = model.classify_capabilities(x, limit)
        return capabilities_arrow(rows, index, probs, len(valid), model.label_array, valid)

    # -- training ----
    def train_columns(self, *, source: str, text_column: str, label_column: str, n_rows: int, text_type: str | None,
                      label_type: str | None, texts: pa.Array | None, vectors: pa.Array | None,
                      labels: pa.Array | None, **options: Any) -> TrainReport:
        """The SQL entry: columns aggregated by ruvector_train_classifier. A column the source lacks arrives with
        DuckDB type "NULL" (see sql/30_learn.sql); errors name the SQL argument and its value. Takes many
        parameters because the macro hands the aggregated columns over one by one."""
        if not n_rows:
            raise InvalidArgument("source", source, "has no rows")
        for argument, name, typ in (("text_column", text_column, text_type), ("label_column", label_column,
                                                                              label_type)):
            if typ in (None, '"NULL"'):
                raise InvalidArgument(argument, name, f"is not a column of {source!r}")
        data = vectors if text_type.endswith("]") else texts
        return self.train(data, labels, text_argument="text_column", label_argument="label_column", **options)

    # -- training -----------------------------------------------------------------------------------------------
    def train(self, texts: Any, labels: Any, config: FastGRNNConfig | None = None, *, model: str = "default",
              progress: Progress | None = None, text_argument: str = "texts", label_argument: str = "labels",
              **values: Any) -> TrainReport:
        """Train on (text or embedding, label) rows, save as the next version of ``model`` and make it active.

        texts : n texts (list / Arrow strings) or embeddings ((n, D) numpy / Arrow lists of D floats)
        labels : n non-NULL class names, at least two distinct
        config, values : :class:`~tinydancer_duck.options.FastGRNNConfig`, or its fields by name applied over it
        progress : called as ``progress(epoch, epochs, metrics)`` after every epoch
        text_argument, label_argument : argument names used in error messages (the SQL entry passes its own)
        Every argument is checked before anything is trained or stored; a failure stores nothing.
        """
        Text().scalar("model", model)
        generator = values.pop("random_state") if isinstance(values.get("random_state"), np.random.Generator) \
            else None  # a caller threading its own stream through
        config = FastGRNNConfig.of(config, **values)
        label_list = labels.to_pylist() if isinstance(labels, (pa.Array, pa.ChunkedArray)) else list(labels)
        n = len(label_list)
        if n == 0:
            raise InvalidArgument(text_argument, "0 rows", "the training data is empty")
        missing = [i for i, label in enumerate(label_list) if label is None]
        if missing:
            raise InvalidArgument(label_argument, None, f"{len(missing)} NULL label(s), first at row {missing[0]}")
        if not all(isinstance(label, str) for label in label_list):
            raise InvalidArgument(label_argument, next(v for v in label_list if not isinstance(v, str)),
                                  "labels must be strings")
        for label in set(label_list):  # labels are stored with the model
            check_text(label_argument, label)
        classes = sorted(set(label_list))
        if len(classes) < 2:
            raise InvalidArgument(label_argument, classes, "needs at least 2 distinct labels")
        x, valid = self.embeddings(texts, argument=text_argument)
        if len(valid) != n:
            raise InvalidArgument(text_argument, f"{len(valid)} rows", f"expected one per label ({n})")
        if not valid.all():
            first = int(np.flatnonzero(~valid)[0])
            raise InvalidArgument(text_argument, None, f"{int((~valid).sum())} NULL or empty row(s), first at row "
                                  f"{first}")
        fitted, report = fit(x, label_list, config, identity=self.embedder.identity, random_state=generator,
                             progress=progress)
        version = self.save(fitted, model)
        return TrainReport(model=model, version=version, **report)


def fit(x: np.ndarray, labels: list[str], config: FastGRNNConfig, *, identity: str,
        random_state: np.random.Generator | None = None,
        progress: Progress | None = None) -> tuple[RouteClassifier, dict[str, Any]]:
    """Fit FastGRNN + head on unit-norm embeddings x float32 (n, D) and n string labels (no store, no checks
    beyond the trainer's). A seeded ``validation_fraction`` of the rows is held out for early stopping and the
    reported validation accuracy (``random_state``: a Generator to draw from instead of the config's seed).
    Returns the model (metrics attached) and the report fields of TrainReport."""
    classes = sorted(set(labels))
    rng = normalize_random_state(config.random_state if random_state is None else random_state)
    y = pc.index_in(pa.array(labels, pa.string()), value_set=pa.array(classes, pa.string())).to_numpy()
    scale = float(np.sqrt(x.shape[1]))
    n = len(y)
    tr, val = validation_split(n, config.validation_fraction, rng)
    if not len(val):
        # Nothing held out, yet draw the permutation fit has always drawn here: the rng stream, and so every seeded
        # model (the packaged default is refit with validation_fraction 0), stays bit-identical.
        rng.permutation(n)
    result = train(x[tr] * np.float32(scale), y[tr], replace(config, validation_fraction=0.0), n_classes=len(classes),
                   x_val=x[val] * np.float32(scale) if len(val) else None, y_val=y[val] if len(val) else None,
                   random_state=rng, progress=progress)  # the split is made here: none held out trains on every row
    fitted = RouteClassifier(result.params, result.head_weight, result.head_bias, tuple(classes), identity, scale)

    def accuracy(rows: np.ndarray) -> float:
        return float(np.mean(np.argmax(fitted.logits(x[rows]), axis=1) == y[rows])) if len(rows) else float("nan")

    report = {"train_accuracy": accuracy(tr), "validation_accuracy": accuracy(val), "epochs_run": result.epochs_run,
              "best_epoch": result.best_epoch, "seconds": result.seconds, "n_train": len(tr), "n_validation": len(val),
              "n_classes": len(classes)}
    metrics = dict(report, epochs=config.epochs, learning_rate=config.learning_rate,
                   weight_decay=config.weight_decay, batch_size=config.batch_size,
                   random_state=config.random_state if random_state is None else None)
    return RouteClassifier(fitted.cell, fitted.head_weight, fitted.head_bias, fitted.labels, identity, scale,
                           metrics), report


def train_classifier(target: Any, texts: Any, labels: Any, config: FastGRNNConfig | None = None, *,
                     model: str = "default", progress: Progress | None = None, **values: Any) -> TrainReport:
    """Train and save a route classifier (for the CLI and Python users).

    target : an Engine (uses ``engine.classifier``) or a :class:`Classifiers`
    texts, labels, config, model, progress, values : see :meth:`Classifiers.train`
    """
    service = getattr(target, "classifier", target)
    if not isinstance(service, Classifiers):
        raise InvalidArgument("target", type(target).__name__, "expected an Engine or a Classifiers service")
    return service.train(texts, labels, config, model=model, progress=progress, **values)
