"""The embedding room: text -> unit float32 vectors (static token table, ONNX, hashing), the WordPiece tokenizer
and the text-or-embedding input helpers.

May import: ground.
"""

from ._calibration import (
    ROUTE_LEAD,
    ROUTE_LEAD_LEVEL,
    ROUTE_LEVEL,
    ROUTE_MARGIN,
    Background,
    EvidenceCalibration,
    NullScores,
    background,
    evidence_calibration,
)
from ._embedders import Embedder, HashingEmbedder, StaticEmbedder, make_embedder
from ._reading import blank as blank_texts
from ._vectors import embedding_matrix, is_vector_input, nonzero_rows, one_embedding
from ._wordpiece import few_python_texts

__all__ = [
    "ROUTE_LEAD",
    "ROUTE_LEAD_LEVEL",
    "ROUTE_LEVEL",
    "ROUTE_MARGIN",
    "Background",
    "Embedder",
    "EvidenceCalibration",
    "HashingEmbedder",
    "NullScores",
    "StaticEmbedder",
    "background",
    "blank_texts",
    "embedding_matrix",
    "evidence_calibration",
    "few_python_texts",
    "is_vector_input",
    "make_embedder",
    "nonzero_rows",
    "one_embedding",
]
