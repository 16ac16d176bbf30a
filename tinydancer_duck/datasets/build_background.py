"""Rebuild tinydancer_duck/datasets/background_requests.json: generic requests from many domains, the background every embedder's
similarities are calibrated against (tinydancer_duck/embed/_calibration.py).

A similarity between a request and a route or a capability is evidence only when it is above what unrelated requests
reach. The null distribution is measured on pairs of these texts from different groups (a CLINC150 domain, Banking77,
a RouterBench task, an out-of-scope query), so a default threshold means "higher than unrelated text reaches this
often" for whichever embedder is in use.

Sources (seeded sample, the same file every time): CLINC150 train (Larson et al. 2019, CC BY 3.0), two utterances per
intent; CLINC150 oos_train, all 100; Banking77 train (Casanueva et al. 2020, CC BY 4.0), 150; RouterBench
(Hu et al. 2024) arc_challenge, mbpp and winogrande prompts, 100 each, the first 240 characters of the first turn
(one group: their answer-format boilerplate is shared across tasks, which says nothing about relatedness).
CLINC150 val and oos_val (the evaluation sets) are not used.

Usage: ``python tinydancer_duck/datasets/build_background.py [--shared ../shared/datasets]`` (reads the shared datasets at build
time only; the product reads the JSON it writes).
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "background_requests.json"
SEED = 0


def _first_turn(prompt: str) -> str:
    try:
        turns = ast.literal_eval(prompt)
        text = turns[0] if isinstance(turns, list) and turns else prompt
    except (ValueError, SyntaxError):
        text = prompt
    return " ".join(str(text).split())[:240]


def build(shared: Path) -> list[list[str]]:
    """[text, group] rows, deterministic for a given shared folder."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(SEED)
    clinc = json.loads((HERE / "clinc150_train_val.json").read_text())
    domain_of = {intent: domain for domain, intents in json.loads((HERE / "clinc150_domains.json").read_text()).items()
                 for intent in intents}
    rows: list[list[str]] = []
    by_intent: dict[str, list[str]] = {}
    for text, intent in clinc["train"]:
        by_intent.setdefault(intent, []).append(text)
    for intent in sorted(by_intent):
        for i in rng.choice(len(by_intent[intent]), 2, replace=False):
            rows.append([by_intent[intent][i], f"clinc:{domain_of[intent]}"])
    rows += [[text, f"oos:{i}"] for i, (text, _) in enumerate(clinc["oos_train"])]
    with (shared / "intents" / "banking77_train.csv").open(newline="", encoding="utf-8") as handle:
        banking = [row["text"] for row in csv.DictReader(handle)]
    rows += [[banking[i], "banking77"] for i in sorted(rng.choice(len(banking), 150, replace=False))]
    for task in ("arc_challenge", "mbpp", "winograde"):
        prompts = pq.read_table(shared / "routerbench" / f"{task}_train.parquet", columns=["prompt"])["prompt"]
        picked = sorted(rng.choice(len(prompts), 100, replace=False))
        rows += [[_first_turn(prompts[int(i)].as_py()), "routerbench"] for i in picked]  # shared boilerplate
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=HERE.parents[2] / "shared" / "datasets")
    args = parser.parse_args()
    rows = build(args.shared)
    OUT.write_text("[\n" + ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n]\n", encoding="utf-8")
    print(f"{OUT}: {len(rows)} texts in {len({g for _, g in rows})} groups")


if __name__ == "__main__":
    main()
