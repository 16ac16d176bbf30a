"""A store with every table written more than once, for the damage and repair tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import tinydancer_duck as td
from tinydancer_duck.learn._classify import fit
from tinydancer_duck.options import FastGRNNConfig


def six_table_store(path: Path) -> td.Engine:
    """A new store at ``path`` whose six tables each have rows and at least three versions; its engine."""
    engine = td.Engine(path, embedder="hashing")
    engine.register_agent("gpt-4", "llm", ["code"], cost_per_1k_tokens=0.03)
    engine.register_agent("haiku", "llm", ["chat"], cost_per_1k_tokens=0.001)
    engine.routes.create_route("billing", "questions about invoices", "gpt-4")
    engine.routes.create_route("docs", "api documentation", "haiku")
    engine.routes.add_examples(["billing"], ["why was I charged twice"])
    engine.routes.add_examples(["docs"], ["where is the api reference"])
    engine.usage.record("gpt-4", 0.01, True, 100.0)
    engine.usage.record("haiku", 0.002, True, 50.0)
    engine.budgets.set(10.0)
    engine.budgets.set(5.0, agent="gpt-4")
    x = np.random.default_rng(0).normal(size=(40, engine.dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    model, _ = fit(x, ["a", "b"] * 20, FastGRNNConfig(hidden_dim=8, epochs=1), identity=engine.embedder.identity)
    engine.classifier.save(model, "m")
    engine.classifier.save(model, "m")
    return engine
