"""The embedding room: text -> unit float32 vectors (static token table, ONNX, hashing), the WordPiece tokenizer
and the text-or-embedding input helpers.

May import: ground.
"""

from ._calibration import MATCH_LEVEL, ROUTE_LEVEL, ROUTE_MARGIN, Background, NullScores, background, null_scores
from ._embedders import Embedder, HashingEmbedder, StaticEmbedder, make_embedder
from ._vectors import embedding_matrix, is_vector_input, nonzero_rows, one_embedding
from ._wordpiece import few_python_texts

__all__ = [
    "MATCH_LEVEL",
    "ROUTE_LEVEL",
    "ROUTE_MARGIN",
    "Background",
    "Embedder",
    "HashingEmbedder",
    "NullScores",
    "StaticEmbedder",
    "background",
    "embedding_matrix",
    "few_python_texts",
    "is_vector_input",
    "make_embedder",
    "nonzero_rows",
    "null_scores",
    "one_embedding",
]
