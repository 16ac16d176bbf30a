"""What the learners take, declared once: the FastGRNN classifier's training options, the outcome router's, and the
learn room's SQL functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ._params import Choices, Declared, Interval, Param, Signature, Text, declare, params_of
from ._registry import COLUMNS

MAX_HIDDEN_DIM = 4096
MAX_EPOCHS = 10_000
_SEED = Interval(0, 2**32 - 1, integer=True)


@dataclass(frozen=True)
class FastGRNNConfig(Declared):
    """How a FastGRNN cell with a linear head is trained (Adam, mini-batches, early stopping on a seeded validation
    split). The defaults are the route classifier's, tuned on a held-out split of CLINC150 train
    (tinydancer_duck/datasets/build_default_classifier.py)."""

    what: ClassVar[str] = "FastGRNN training"

    hidden_dim: Any = declare("BIGINT", 64, Interval(1, MAX_HIDDEN_DIM, integer=True), "hidden units")
    mode: Any = declare("VARCHAR", "full", Choices(("full", "lowrank", "separate")),
                        "full (shared W, U), lowrank (W = W1 W2, U = U1 U2) or separate (gate and update weights)")
    rank: Any = declare("BIGINT", None, Interval(1, MAX_HIDDEN_DIM, integer=True), "the rank of a lowrank cell")
    epochs: Any = declare("BIGINT", 30, Interval(1, MAX_EPOCHS, integer=True), "maximum epochs (early stopping)")
    batch_size: Any = declare("BIGINT", 128, Interval(1, integer=True), "rows per Adam step")
    learning_rate: Any = declare("DOUBLE", 1e-3, Interval(0, 10, closed="right"), "Adam's step size")
    weight_decay: Any = declare("DOUBLE", 0.1, Interval(0, 1e6), "decoupled weight decay on the weight matrices")
    validation_fraction: Any = declare("DOUBLE", 0.1, Interval(0, 1, closed="left"),
                                       "seeded share of rows held out for early stopping")
    patience: Any = declare("BIGINT", 10, Interval(1, MAX_EPOCHS, integer=True),
                            "epochs without a lower validation loss before stopping")
    random_state: Any = declare("BIGINT", 0, _SEED, "seed of the init, the split and the shuffles", flag="--seed")


@dataclass(frozen=True)
class OutcomeModelConfig(Declared):
    """How the outcome router is trained: its kind, that kind's hyperparameters (None: the kind's default; given to
    a kind without it, an error), the calibration, and the folds cross-fitted for out-of-fold metrics and the
    willingness to pay it is calibrated to."""

    what: ClassVar[str] = "outcome router training"

    kind: Any = declare("VARCHAR", "knn", Choices(("knn", "head", "mf", "ensemble")),
                        "knn (default), head, mf or ensemble")
    hidden_dim: Any = declare("BIGINT", None, Interval(0, MAX_HIDDEN_DIM, integer=True),
                              "hidden units of a head (0: linear)")
    epochs: Any = declare("BIGINT", None, Interval(1, MAX_EPOCHS, integer=True),
                          "maximum epochs of a head or mf (early stopping)")
    learning_rate: Any = declare("DOUBLE", None, Interval(0, 10, closed="right"), "step size of a head or mf")
    weight_decay: Any = declare("DOUBLE", None, Interval(0, 1e6), "weight decay of a head or mf")
    validation_fraction: Any = declare("DOUBLE", None, Interval(0, 0.9), "early-stopping share of a head or mf")
    calibration: Any = declare("VARCHAR", "platt", Choices(("platt", "none")),
                               "platt (per-agent Platt scaling, the default) or none")
    random_state: Any = declare("BIGINT", 0, _SEED, "seed of the folds and the fits", flag="--seed")
    folds: Any = declare("BIGINT", 5, Interval(2, 20, integer=True), "cross-fitted folds for calibration")

    def hyperparameters(self) -> dict[str, Any]:
        """The kind's hyperparameters that were given."""
        names = ("hidden_dim", "epochs", "learning_rate", "weight_decay", "validation_fraction")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


MODEL = Param("model", "VARCHAR", check=Text(), doc="the model's name in the store")
SOURCE = Param("source", "TABLE", doc="a table or view name, or a file DuckDB reads (Parquet, CSV, JSON)")
CONTENT = Param("content", "REQUEST", doc="text, or its embedding", per_row=True)
HOLDOUT = Param("holdout", "DOUBLE", None, Interval(0, 1, closed="neither"),
                "a seeded share of the requests (by text) kept out of training, for an out-of-sample replay",
                metavar="FRACTION")
_CLASSIFIER_TRAINING = tuple(p for p in params_of(FastGRNNConfig)
                             if p.name in ("hidden_dim", "epochs", "learning_rate", "weight_decay", "random_state"))

SIGNATURES = (
    Signature("ruvector_classify_request", (CONTENT,), "30_learn", twin="Engine.classify_struct",
              doc="The active classifier's top 5 classes: STRUCT(classifications STRUCT(label, probability)[], "
                  "top_category, confidence); NULL or blank content gives NULL. The active classifier is the "
                  "newest saved model of kind 'route_classifier', else the default shipped in the package "
                  "(CLINC150 intents)."),
    Signature("ruvector_classify_capabilities",
              (CONTENT, Param("threshold", "DOUBLE", 0.5, Interval(0, 1, closed="left"),
                              "the sigmoid probability a class must exceed", per_row=True)), "30_learn",
              twin="Classifiers.capabilities_list",
              doc="Multi-label: every class whose sigmoid probability exceeds threshold, sorted; "
                  "STRUCT(label, probability)[]."),
    Signature("ruvector_train_classifier",
              (SOURCE, Param("text_column", "VARCHAR", "text", Text(), "the column holding text or embeddings"),
               Param("label_column", "VARCHAR", "label", Text(), "the column holding the labels"),
               MODEL.evolve(default="default"), *_CLASSIFIER_TRAINING), "30_learn", twin="Classifiers.train",
              doc="Train a route classifier on (text or embedding, label) rows, save it as the next version of "
                  "model (it becomes active) and return one row: model, version, train_accuracy, "
                  "validation_accuracy, epochs_run, best_epoch, seconds, n_train, n_validation, n_classes."),
    Signature("ruvector_list_models", (), "30_learn", twin="Classifiers.list",
              doc="Saved models, newest first; active marks the one ruvector_classify_request uses."),
    Signature("ruvector_activate_classifier",
              (MODEL.evolve(name="name"), Param("version", "BIGINT", None, Interval(1, integer=True),
                                                "the version (default: the newest)")), "30_learn",
              twin="Classifiers.activate",
              doc="Make a saved classifier active again (saves a copy as its newest version); returns that version."),
    Signature("ruvector_train_outcome_router",
              (SOURCE.evolve(sql="VARCHAR", doc="the log: a Parquet, CSV or JSON file (by extension), or a folder "
                                                "or glob of them"),
               MODEL.evolve(default="outcomes"), COLUMNS, *params_of(OutcomeModelConfig), HOLDOUT), "60_replay",
              twin="OutcomeRouters.train_log",
              doc="Train the outcome router from a log with per-agent outcomes (wide or long), save it as the next "
                  "version of model (it becomes active) and return its out-of-fold metrics: kind 'agent' (per "
                  "agent), 'overall', 'routing' (router vs best single agent vs oracle: quality and cost per "
                  "request). folds models are cross-fitted first; their out-of-fold curve calibrates the "
                  "willingness to pay saved with the model (ruvector_calibrate)."),
    Signature("ruvector_calibrate",
              (Param("quality_share", "DOUBLE", None, Interval(0, 1, closed="right"),
                     "share of the best single agent's quality"),
               Param("cost_per_1k", "DOUBLE", None, Interval(0), "dollars per 1,000 requests"),
               Param("strongest_share", "DOUBLE", None, Interval(0, 1), "share of requests sent to the best agent "
                     "(RouteLLM's calibration)"),
               MODEL.evolve(default=None, doc="the outcome router (default: the active one)")), "60_replay",
              twin="OutcomeRouters.knob",
              doc="The willingness to pay that meets one target on the outcome router's out-of-fold cost-quality "
                  "curve; none: the default knob optimize_for := 'learned' uses (95% of the best agent's "
                  "quality). reached is false when no point meets it."),
    Signature("ruvector_calibration_curve",
              (MODEL.evolve(default=None, doc="the outcome router (default: the active one)"),), "60_replay",
              twin="OutcomeRouters.curve_rows",
              doc="The out-of-fold curve itself: one row per willingness to pay of its grid (cost_per_1k, quality, "
                  "quality_share, strongest_share), is_default marking the point optimize_for := 'learned' "
                  "routes at."),
)
