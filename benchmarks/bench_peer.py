"""Side by side with semantic-router (PyPI) on the same work: route matching over precomputed embeddings.

    python benchmarks/bench_peer.py [--repeats 5]       (also: python benchmarks/run.py --peer)

Both get the same routes (150 CLINC150 intents, 10 example utterances each), the same precomputed embeddings (our
default embedder's, computed once here) and the same 2,000 queries (CLINC150 validation texts, as embeddings).
semantic-router runs in its own venv (``$PEER_VENV``, default /tmp/peer_venv; created with ``pip install
semantic-router`` when missing) with a DenseEncoder subclass that looks the precomputed vectors up by text, and its
default in-memory LocalIndex; it is timed per query (``router(text)``, its API is one query per call) and through
the index alone (``index.query(vector)``). Ours is timed per query and in one batch (``SemanticRoutes.match``,
top-1). Both pick the route of the most similar utterance (max cosine; peer: top_k=1), so the picks should agree;
the agreement is printed. Skips with a message when the peer cannot be installed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PEER_VENV = Path(os.environ.get("PEER_VENV", "/tmp/peer_venv"))
ROUTES, PER_ROUTE, QUERIES = 150, 10, 2000

#: Runs inside the peer venv: argv = npz path, repeats; prints one JSON line.
PEER_CHILD = r'''
import json, statistics, sys, time
import numpy as np
from semantic_router import IndexedRouter, Route
from semantic_router.encoders.base import DenseEncoder
from semantic_router.index import LocalIndex

data = np.load(sys.argv[1], allow_pickle=False)
repeats = int(sys.argv[2])
names, texts, vectors = list(data["route_of"]), list(data["texts"]), data["vectors"]
queries, qvectors = list(data["queries"]), data["qvectors"]
lookup = {t: v.tolist() for t, v in zip(texts + queries, np.vstack([vectors, qvectors]))}

class Precomputed(DenseEncoder):
    """Returns the precomputed embedding of each text (no model)."""
    name: str = "precomputed"
    def __call__(self, docs):
        return [lookup[d] for d in docs]

by_route = {}
for name, text in zip(names, texts):
    by_route.setdefault(name, []).append(text)
routes = [Route(name=n, utterances=u) for n, u in by_route.items()]
router = IndexedRouter(encoder=Precomputed(), routes=routes, index=LocalIndex(), top_k=1)
picks = [router(q).name for q in queries]

def timed(fn):
    runs = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); runs.append(time.perf_counter() - t)
    return statistics.median(runs)

full = timed(lambda: [router(q) for q in queries])
index_only = timed(lambda: [router.index.query(vector=v, top_k=1) for v in qvectors])
import semantic_router
print(json.dumps({"version": getattr(semantic_router, "__version__", "?"), "picks": picks,
                  "router_qps": len(queries) / full, "index_qps": len(queries) / index_only}))
'''


def peer_python() -> Path | None:
    """The peer venv's python, installing semantic-router into it when missing; None when that fails."""
    python = PEER_VENV / "bin" / "python"
    check = [str(python), "-c", "import semantic_router"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True, capture_output=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "semantic-router"], check=True,
                       capture_output=True, timeout=600)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"skip peer: cannot install semantic-router into {PEER_VENV}: {exc}")
        return None
    return python if subprocess.run(check, capture_output=True, check=False).returncode == 0 else None


def workload() -> dict[str, np.ndarray]:
    """Routes, utterances and queries from CLINC150, with our default embedder's vectors."""
    from tinydancer_duck.embed._embedders import make_embedder

    data = json.loads((REPO / "tinydancer_duck" / "datasets" / "clinc150_train_val.json").read_text())
    by_intent: dict[str, list[str]] = {}
    for text, intent in data["train"]:
        by_intent.setdefault(intent, []).append(text)
    intents = sorted(by_intent)[:ROUTES]
    texts = [t for i in intents for t in by_intent[i][:PER_ROUTE]]
    route_of = [i for i in intents for _ in by_intent[i][:PER_ROUTE]]
    queries = [t for t, i in data["val"] if i in by_intent][:QUERIES]
    embedder = make_embedder("static")
    return {"route_of": np.array(route_of), "texts": np.array(texts), "queries": np.array(queries),
            "vectors": embedder.embed(texts).astype(np.float32),
            "qvectors": embedder.embed(queries).astype(np.float32)}


def ours(work: dict[str, np.ndarray], repeats: int) -> dict:
    import tinydancer_duck as td

    with tempfile.TemporaryDirectory() as scratch:
        engine = td.Engine(Path(scratch) / "store")
        names, vectors = work["route_of"].tolist(), work["vectors"]
        first = {}
        for row, name in enumerate(names):
            first.setdefault(name, row)
        route_names = list(first)
        engine.routes.create({"name": route_names, "description": [None] * len(route_names),
                              "target_agent": ["agent"] * len(route_names),
                              "embedding": [vectors[first[n]] for n in route_names]})
        rest = [row for row, name in enumerate(names) if first[name] != row]
        engine.routes.add_examples([names[r] for r in rest], [work["texts"][r] for r in rest],
                                   embeddings=[vectors[r] for r in rest])
        q = work["qvectors"]
        picks = [m[0]["route_name"] if m else None for m in engine.semantic_match(q, top_k=1).to_pylist()]

        def timed(fn) -> float:
            fn()
            runs = []
            for _ in range(repeats):
                started = time.perf_counter()
                fn()
                runs.append(time.perf_counter() - started)
            return statistics.median(runs)

        batch = timed(lambda: engine.semantic_match(q, top_k=1))
        single = timed(lambda: [engine.semantic_match(q[i:i + 1], top_k=1) for i in range(len(q))])
    return {"picks": picks, "batch_qps": len(q) / batch, "per_query_qps": len(q) / single}


def compare(repeats: int) -> dict | None:
    python = peer_python()
    if python is None:
        return None
    work = workload()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "work.npz"
        np.savez(path, **work)
        out = subprocess.run([str(python), "-c", PEER_CHILD, str(path), str(repeats)], capture_output=True,
                             text=True, check=False)
    if out.returncode:
        print(f"skip peer: semantic-router run failed:\n{out.stderr[-2000:]}")
        return None
    peer = json.loads(out.stdout.strip().splitlines()[-1])
    mine = ours(work, repeats)
    agree = float(np.mean([a == b for a, b in zip(peer.pop("picks"), mine.pop("picks"))]))
    return {"routes": ROUTES, "utterances": len(work["texts"]), "queries": len(work["queries"]),
            "dim": int(work["vectors"].shape[1]), "semantic_router": peer, "tinydancer": mine,
            "same_pick": agree}


def print_comparison(result: dict) -> None:
    peer, mine = result["semantic_router"], result["tinydancer"]
    print(f"\nsemantic-router {peer['version']} vs tinydancer_duck: {result['routes']} routes, "
          f"{result['utterances']} utterances, {result['queries']} queries, {result['dim']}-dim precomputed "
          f"embeddings; same top route for {result['same_pick']:.1%} of queries")
    print(f"| {'what':<56} | {'queries/s':>11} |")
    print(f"|{'-' * 58}|{'-' * 13}|")
    for what, qps in (("semantic-router IndexedRouter, router(text), per query", peer["router_qps"]),
                      ("semantic-router LocalIndex.query(vector), per query", peer["index_qps"]),
                      ("tinydancer SemanticRoutes.match, per query", mine["per_query_qps"]),
                      ("tinydancer SemanticRoutes.match, one batch", mine["batch_qps"])):
        print(f"| {what:<56} | {qps:>11,.0f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    result = compare(args.repeats)
    if result is not None:
        print_comparison(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
