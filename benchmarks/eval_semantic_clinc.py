"""Semantic routes on CLINC150: one route per intent, thresholds fitted on val (with out-of-scope examples).

Steps, all through the SQL surface (``tinydancer_duck.connect``, default static embedder, fresh temp store):
1. ``ruvector_create_route`` for the 150 intents (description = the intent name, underscores as spaces);
2. ``ruvector_add_route_example`` for the 15,000 train utterances (a route scores as the max over its examples);
3. baseline on val (no thresholds): in-scope accuracy; every out-of-scope query is routed somewhere;
4. ``ruvector_fit_routes`` over val + oos_val (label NULL = no route): thresholds persist as min_similarity;
   twice: plain accuracy (out_of_scope_weight 1) and balanced (an oos example weighs n_in / n_oos = 30);
5. in-scope accuracy and out-of-scope recall on val with the fitted thresholds, as ``ruvector_semantic_route``
   returns them (its first route, or none);
6. honesty check: 2-fold cross-fitting on val (fit on one half, score the other), since step 5 scores the data
   the thresholds were fitted on.

Usage: ``python benchmarks/eval_semantic_clinc.py``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import tinydancer_duck as td

DATA = REPO / "tinydancer_duck" / "datasets" / "clinc150_train_val.json"


def load() -> dict[str, list[list[str]]]:
    return json.loads(DATA.read_text())


def labeled(rows: list[list[str]], oos: list[list[str]]) -> pa.Table:
    return pa.table({"text": [t for t, _ in rows] + [t for t, _ in oos],
                     "route": [i for _, i in rows] + [None] * len(oos)})


def scored(con, table_name: str) -> tuple[float, float]:
    """(in-scope accuracy, out-of-scope recall) of the first route ruvector_semantic_route lists."""
    got = con.execute(f"""
        SELECT route, (ruvector_semantic_route(text, top_k := 1))[1].route_name AS predicted FROM {table_name}
    """).fetchall()
    inscope = [(r, p) for r, p in got if r is not None]
    oos = [p for r, p in got if r is None]
    acc = float(np.mean([r == p for r, p in inscope]))
    return acc, float(np.mean([p is None for p in oos])) if oos else float("nan")


def main() -> None:
    data = load()
    store = tempfile.mkdtemp(prefix="td_clinc_")
    con = td.connect(store)
    train = pa.table({"text": [t for t, _ in data["train"]], "intent": [i for _, i in data["train"]]})
    val = labeled(data["val"], data["oos_val"])
    con.register("train_rows", train)
    con.register("val_rows", val)
    t0 = time.perf_counter()
    con.execute("""
        SELECT ruvector_create_route(name := intent, description := replace(intent, '_', ' '),
                                     target_agent := intent || '-agent')
        FROM (SELECT DISTINCT intent FROM train_rows)
    """).fetchall()
    con.execute("SELECT count(*) FILTER (ruvector_add_route_example(intent, text)) FROM train_rows").fetchall()
    built = time.perf_counter() - t0
    routes, examples = con.execute("SELECT count(*), sum(examples) FROM ruvector_list_routes()").fetchone()
    print(f"routes: {routes}, examples: {examples}, built in {built:.1f} s")

    t0 = time.perf_counter()
    base_acc, base_oos = scored(con, "val_rows")
    took = time.perf_counter() - t0
    print(f"no thresholds:     in-scope accuracy {base_acc:.4f}  out-of-scope recall {base_oos:.4f}"
          f"   ({val.num_rows / took:,.0f} queries/s through SQL)")

    n_in, n_oos = len(data["val"]), len(data["oos_val"])
    for label, weight in (("accuracy", 1.0), ("balanced", n_in / n_oos)):
        t0 = time.perf_counter()
        report = pl.from_arrow(con.sql(
            f"SELECT * FROM ruvector_fit_routes('val_rows', out_of_scope_weight := {weight})").to_arrow_table())
        fit_s = time.perf_counter() - t0
        acc, oos = scored(con, "val_rows")
        row = report.row(0, named=True)
        print(f"\nfit objective {label} (out_of_scope_weight {weight:g}), fit in {fit_s:.1f} s")
        print(f"  fitted on val, scored on val:  in-scope accuracy {acc:.4f}  out-of-scope recall {oos:.4f}"
              f"  (report: accuracy {row['accuracy']:.4f}, oos precision {row['out_of_scope_precision']:.4f})")
        f1 = report["f1"].drop_nans().drop_nulls()
        print(f"  per-route F1 median {f1.median():.3f}, min {f1.min():.3f}; thresholds median "
              f"{report['min_similarity'].median():.3f} [{report['min_similarity'].min():.3f}, "
              f"{report['min_similarity'].max():.3f}]")
        # 2-fold cross-fitting: thresholds fitted on one half of val (in-scope and oos), scored on the other half.
        fold = np.random.default_rng(0).integers(0, 2, val.num_rows)
        accs, ooss = [], []
        for k in (0, 1):
            con.register("fit_half", val.filter(pa.array(fold == k)))
            con.register("score_half", val.filter(pa.array(fold != k)))
            con.sql(f"SELECT * FROM ruvector_fit_routes('fit_half', out_of_scope_weight := {weight})").fetchall()
            a, o = scored(con, "score_half")
            accs.append(a)
            ooss.append(o)
        print(f"  2-fold cross-fit (held out):   in-scope accuracy {np.mean(accs):.4f}  out-of-scope recall "
              f"{np.mean(ooss):.4f}")


if __name__ == "__main__":
    main()
