"""The off-policy estimators and their intervals on synthetic logs whose truth is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from tinydancer_duck._offpolicy import (
    blend_weight,
    direct_method,
    doubly_robust,
    importance_weights,
    ips,
    one_hot,
    snips,
)
from tinydancer_duck.replay._costs import FITTED, PER_TOKEN, REGISTERED, fit_costs
from tinydancer_duck.replay._outcome_model import fit_outcome_cells

A = 4


def world(seed: int, n: int = 2000):
    """A context (0/1), per-agent success probabilities that depend on it, a logging policy that prefers agent 0 on
    context 1 (so context confounds the logged outcomes), a target that picks agent 3 on context 0 and agent 1 on
    context 1; returns what a log holds and the target's true mean quality on these requests."""
    rng = np.random.default_rng(seed)
    context = rng.integers(0, 2, n)
    p_success = np.where(context[:, None] == 1, [0.9, 0.3, 0.6, 0.5], [0.2, 0.7, 0.4, 0.8])
    outcomes = (rng.random((n, A)) < p_success).astype(float)
    logging = np.where(context[:, None] == 1, [0.55, 0.15, 0.15, 0.15], [0.25, 0.25, 0.25, 0.25])
    logged = (rng.random(n)[:, None] > np.cumsum(logging, axis=1)).sum(axis=1)
    rows = np.arange(n)
    target = one_hot(np.where(context == 1, 1, 3), A)
    truth = float((target * outcomes).sum(axis=1).mean())
    return {"p_success": p_success, "reward": outcomes[rows, logged], "logged": logged,
            "propensity": logging[rows, logged], "target": target, "truth": truth}


KERNELS = {"ips": lambda pi, q, a, r, p: ips(pi, a, r, p), "snips": lambda pi, q, a, r, p: snips(pi, a, r, p),
           "dr": doubly_robust}


def test_importance_weights():
    pi = one_hot(np.array([0, 1, 2, -1]), 3)
    w = importance_weights(pi, np.array([0, 0, 2, 1]), np.array([0.5, 0.25, np.nan, 0.5]))
    assert w.tolist() == [2.0, 0.0, 0.0, 0.0]  # a miss, an unknown propensity and no decision weigh 0


def test_the_estimators_follow_their_formulas():
    pi = np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]])
    q_hat = np.array([[0.2, 0.6], [0.5, 0.5], [0.3, 0.9]])
    logged, reward, p = np.array([1, 0, 0]), np.array([1.0, 0.0, 1.0]), np.array([0.5, 0.25, 0.8])
    w = np.array([0.5 / 0.5, 1.0 / 0.25, 0.0])
    assert direct_method(pi, q_hat) == pytest.approx([0.4, 0.5, 0.9])
    assert ips(pi, logged, reward, p) == pytest.approx(w * reward)
    assert doubly_robust(pi, q_hat, logged, reward, p) == pytest.approx([0.4 + 1 * (1 - 0.6), 0.5 + 4 * (0 - 0.5),
                                                                         0.9])
    assert snips(pi, logged, reward, p).mean() == pytest.approx((w * reward).sum() / w.sum())


@pytest.mark.parametrize("estimator", ["ips", "snips", "dr"])
def test_weighted_estimators_are_unbiased_under_confounded_logging(estimator):
    """Over 200 seeds the mean error is within 3 standard errors of 0, while the naive mean of the logged outcomes
    of the agents the target picks (the confounded answer) is far off."""
    errors, naive = [], []
    for seed in range(200):
        w = world(seed)
        wrong_model = np.full((len(w["reward"]), A), 0.5)  # DR must not need a right outcome model
        terms = KERNELS[estimator](w["target"], wrong_model, w["logged"], w["reward"], w["propensity"])
        errors.append(terms.mean() - w["truth"])
        picked = w["target"][np.arange(len(w["reward"])), w["logged"]] > 0
        naive.append(w["reward"][picked].mean() - w["truth"])
    errors = np.array(errors)
    assert abs(errors.mean()) < 3 * errors.std() / np.sqrt(len(errors)) + 1e-3
    assert abs(np.mean(naive)) > 0.05


def test_influence_intervals_cover_the_truth_about_95_percent_of_the_time():
    covered = []
    for seed in range(300):
        w = world(seed, n=800)
        terms = doubly_robust(w["target"], np.full((800, A), 0.5), w["logged"], w["reward"], w["propensity"])
        half = 1.96 * terms.std(ddof=1) / np.sqrt(len(terms))
        covered.append(abs(terms.mean() - w["truth"]) <= half)
    assert 0.92 <= np.mean(covered) <= 0.995


def test_direct_method_with_the_right_model_is_exact_on_average():
    errors = []
    for seed in range(100):
        w = world(seed)
        errors.append(direct_method(w["target"], w["p_success"]).mean() - w["truth"])
    assert abs(np.mean(errors)) < 0.003


def test_the_blend_keeps_drs_correction_only_when_it_is_more_than_noise():
    assert blend_weight(0.80, 0.805, 0.01**2) == 0.0  # a correction within its noise: DM
    assert blend_weight(0.80, 0.90, 0.01**2) == pytest.approx((0.01 - 0.0001) / 0.01)  # a real bias: mostly DR
    assert 0 < blend_weight(0.80, 0.83, 0.02**2) < 1


def test_outcome_cells_are_cross_fitted_and_shrink_sparse_cells():
    """Two categories, three agents; agent 2 has 3 outcomes in category 1 (all right) and many elsewhere."""
    folds, c, a = 5, 2, 3
    rng = np.random.default_rng(0)
    counts = np.array([[400, 400, 400], [400, 400, 3]])
    means = np.array([[0.8, 0.5, 0.6], [0.7, 0.4, 1.0]])
    sums = {k: np.zeros((folds, c, a)) for k in ("weight", "weighted", "weighted_square", "weight_square")}
    for i in range(c):
        for j in range(a):
            y = (rng.random(counts[i, j]) < (0.5 if (i, j) == (1, 2) else means[i, j])).astype(float)
            if (i, j) == (1, 2):
                y[:] = 1.0
            fold = np.arange(len(y)) % folds
            for f in range(folds):
                part = y[fold == f]
                sums["weight"][f, i, j] += len(part)
                sums["weighted"][f, i, j] += part.sum()
                sums["weighted_square"][f, i, j] += (part**2).sum()
                sums["weight_square"][f, i, j] += len(part)
    cells = fit_outcome_cells(sums["weight"], sums["weighted"], sums["weighted_square"], sums["weight_square"])
    assert cells.mean.shape == (folds, c + 1, a)
    # a well-observed cell keeps about its mean over the other folds; the 3/3 cell is pulled well below 1
    other_folds = (sums["weighted"].sum(axis=0) - sums["weighted"][0]) / (sums["weight"].sum(axis=0) - sums["weight"][0])
    assert cells.mean[0, 0, 0] == pytest.approx(other_folds[0, 0], abs=0.02)
    assert cells.mean[:, 1, 2].max() < 0.9
    assert (cells.variance[:, 1, 2] > 5 * cells.variance[:, 0, 0]).all()
    # fold 0's figures exclude fold 0: changing only fold 0's outcomes leaves them as they were
    changed = {k: v.copy() for k, v in sums.items()}
    changed["weighted"][0] = changed["weight"][0]  # every fold-0 outcome right
    again = fit_outcome_cells(changed["weight"], changed["weighted"], changed["weighted_square"],
                              changed["weight_square"])
    assert again.mean[0, 0, 0] == pytest.approx(cells.mean[0, 0, 0], abs=1e-12)
    assert again.mean[1, 0, 0] > cells.mean[1, 0, 0]


def test_cost_model_follows_the_requests_tokens_and_says_which_source():
    """cost = 0.001 + 0.00002 t in category 0 and 0.003 + 0.00002 t in category 1 for agent 0; agent 1 is priced
    per token (its registered price is used); agent 2 has no rows (its registered price)."""
    rng = np.random.default_rng(1)
    sums = {k: np.zeros((2, 3)) for k in ("rows", "tokens", "tokens_square", "cost", "tokens_cost", "cost_square")}
    tokens = {}
    for c, base in ((0, 0.001), (1, 0.003)):
        t = rng.integers(10, 500, 200).astype(float)
        tokens[c] = t
        cost = base + 2e-5 * t
        for key, values in (("rows", np.ones_like(t)), ("tokens", t), ("tokens_square", t * t), ("cost", cost),
                            ("tokens_cost", t * cost), ("cost_square", cost * cost)):
            sums[key][c, 0] = sums[key][c, 1] = values.sum()
    model = fit_costs(sums, per_token=np.array([False, True, False]), imported=np.zeros(3, bool))
    assert model.source.tolist() == [[FITTED, PER_TOKEN, REGISTERED]] * 3  # each category, and an unknown one
    # a price registered from elsewhere keeps the categories the log never priced
    sparse = {k: np.vstack([v[:1], np.zeros_like(v[1:])]) for k, v in sums.items()}
    external = fit_costs(sparse, per_token=np.zeros(3, bool), imported=np.zeros(3, bool),
                         external=np.array([True, False, False]))
    assert external.source[:, 0].tolist() == [FITTED, REGISTERED, REGISTERED]
    estimate = np.full((4, 3), 0.5)
    logged = np.full((4, 3), np.nan)
    logged[3, 0] = 0.123
    mean_t = [tokens[0].mean(), tokens[1].mean()]
    t = np.array([mean_t[0], 100.0, 450.0, 300.0])
    cost, source, noise, _ = model.costs(np.array([0, 0, 1, 1]), t, estimate, logged)
    assert cost[0, 0] == pytest.approx(0.001 + 2e-5 * mean_t[0], rel=1e-9)  # the cell's mean at its mean tokens
    truth = np.array([0.001, 0.001, 0.003]) + 2e-5 * t[:3]
    assert cost[:3, 0] == pytest.approx(truth, rel=0.1)  # and a longer request costs more, about as much more
    assert cost[2, 0] > cost[1, 0]
    assert cost[3, 0] == 0.123 and source[3, 0] == 0 and noise[3, 0] == 0  # logged wins
    assert (cost[:, 1:] == 0.5).all()  # the router's estimate from the registered price
