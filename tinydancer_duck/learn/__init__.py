"""The learning room: FastGRNN, the route classifier and the outcome router (kernels, training, saving).
Kernel modules never import the store.

May import: store, embed, ground.
"""

from ._calibrate import CALIBRATION_TYPE, KNOB_TYPE
from ._classifier import (
    CLASSIFY_TYPE,
    LABEL_PROB,
    TOP_K,
    RouteClassifier,
    capability_match,
    classification_arrow,
    top_classes,
)
from ._classify import Classifiers, TrainReport, row_model, train_classifier
from ._fastgrnn import FastGRNNParams
from ._outcomes import METRICS_TYPE, OutcomeModel, OutcomeRouters

__all__ = [
    "CALIBRATION_TYPE",
    "CLASSIFY_TYPE",
    "KNOB_TYPE",
    "LABEL_PROB",
    "METRICS_TYPE",
    "TOP_K",
    "Classifiers",
    "FastGRNNParams",
    "OutcomeModel",
    "OutcomeRouters",
    "RouteClassifier",
    "TrainReport",
    "capability_match",
    "classification_arrow",
    "row_model",
    "top_classes",
    "train_classifier",
]
