"""The learning room: FastGRNN, the route classifier and the outcome router (kernels, training, saving).
Kernel modules never import the store.

May import: store, embed, ground.
"""

from ._classifier import CLASSIFY_TYPE, LABEL_PROB, RouteClassifier, capability_match
from ._classify import Classifiers, TrainReport, row_model, train_classifier
from ._outcomes import METRICS_TYPE, OutcomeRouters

__all__ = [
    "CLASSIFY_TYPE",
    "LABEL_PROB",
    "METRICS_TYPE",
    "Classifiers",
    "OutcomeRouters",
    "RouteClassifier",
    "TrainReport",
    "capability_match",
    "row_model",
    "train_classifier",
]
