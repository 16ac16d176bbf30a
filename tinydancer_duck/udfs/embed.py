"""ruvector_embed: text -> FLOAT[D] with the engine's embedder."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from ._spec import UDF, one_chunk

if TYPE_CHECKING:
    from tinydancer_duck.engine import Engine


def udfs(engine: Engine) -> list[UDF]:
    dim = engine.dim

    def embed(text: pa.ChunkedArray) -> pa.Array:
        texts = one_chunk(text)
        vectors = engine.embed(texts)
        return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), dim,
                                                 mask=texts.is_null())

    return [UDF("_td_embed", embed, ["VARCHAR"], f"FLOAT[{dim}]")]
