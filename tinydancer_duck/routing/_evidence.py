"""Step 3 of the router: p = P(agent can serve the request), the evidence every objective weighs (DESIGN §5).

A similarity alone is not evidence: 'a request about weather' sits at 0.28 from real weather questions and at 0.2-0.3
from anything else. So similarities become probabilities through a calibration fitted on labeled training requests
(:class:`~tinydancer_duck.embed.EvidenceCalibration`, ``tinydancer_duck/datasets/build_evidence.py``):

1. each agent's similarity to the request, by kind: the soft maximum over its capability phrases and description,
   and the best cosine over its examples, each centered on what unrelated requests reach against that agent (a hub
   phrase like 'customer support' sits high against everything) and divided by the embedder's spread;
2. a conditional logit over the active agents and "no specialist": agent a's utility is
   ``w_phrase * phrase + w_margin * (phrase - the best other agent's) + [has examples] * (w_example * example +
   b_example + w_example_margin * (example - the best other agent's))``, no specialist's is ``b_none``; the softmax
   of the utilities is the probability that each agent is the one the request is for;
3. the request's reading weight (:func:`reading_weight`) scales that evidence: text the embedder cannot read is no
   evidence, and a word it knows only as pieces weakens it;
4. scope: a specialist (a tool, an API, a human desk) serves with its own probability, and with none when nothing
   matches; a general agent (an LLM that answers anything at its quality) is the "no specialist" option and serves
   whatever no specialist is needed for: p = 1 - the specialists' probabilities summed. So a weak match elsewhere never removes a general agent, and
   with no specialist registered every general agent has p = 1 (an outcome router's expected quality is unchanged).

A trained capability classifier's probability mass on an agent's capabilities (or a replay's recorded p) replaces
steps 1-2 (:attr:`Signals.match`). Pure numpy; the router decides with p (:mod:`._router`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinydancer_duck.registry import AgentSnapshot, Similarities


@dataclass(frozen=True)
class Evidence:
    """float32 (n, A) probability of serving; float32 (n, A) the similarity behind it (its phrases' or its examples',
    whichever weighed more; the signal itself for a classifier); int32 (n, A) the row of ``AgentSnapshot.labels``
    behind that similarity (-1: a signal gave it)."""

    p_serve: np.ndarray
    similarity: np.ndarray
    row: np.ndarray


def reading_weight(known: np.ndarray | None, total: np.ndarray | None, snapshot: AgentSnapshot) -> np.ndarray | None:
    """float32 (n,) how much of each request's similarity is evidence: 0 below the calibration's read level (the
    share of tokens read as whole known words), 1 from its full read level on, linear between; None (all 1) for
    requests given as embeddings, whose text is not known."""
    if known is None or total is None:
        return None
    calibration = snapshot.calibration
    share = known / np.maximum(total, 1)
    span = max(calibration.full_read_level - calibration.read_level, 1e-9)
    return np.minimum(np.maximum((share - calibration.read_level) / span, 0.0), 1.0).astype(np.float32)


def evidence(found: Similarities | None, snapshot: AgentSnapshot, *, signal: np.ndarray | None = None,
             reading: np.ndarray | None = None, available: np.ndarray | None = None) -> Evidence:
    """The probability that each agent serves each request (module docstring), from the snapshot's similarities
    ``found`` or a ``signal`` (float (n, A) in [0, 1]: the probability for each specialist, as given).

    available : bool (n, A) the candidates; a specialist that is not one (excluded, its circuit open, over its
        budget, removed by a constraint) claims nothing, so the general agents serve what it would have (the same
        decisions as if it were not registered).
    """
    if signal is not None:
        similarity = np.asarray(signal, np.float32)
        specialist = np.clip(similarity, 0.0, 1.0)
        if available is not None:
            specialist = np.where(available, specialist, np.float32(0.0))
        row = np.full(similarity.shape, -1, np.int32)
    else:
        utility, similarity, row = _utilities(found, snapshot, available)
        specialist = _softmax_with_none(utility, snapshot.calibration.none_logit)
    if reading is not None:
        specialist = specialist * reading[:, None]
    general = snapshot.general
    if general.any():
        specialist = np.where(general, np.float32(0.0), specialist)
        left = np.minimum(np.maximum(1.0 - specialist.sum(axis=1, keepdims=True), 0.0), 1.0).astype(np.float32)
        specialist = np.where(general, left, specialist)
    return Evidence(specialist.astype(np.float32, copy=False), similarity, row)


def _utilities(found: Similarities, snapshot: AgentSnapshot, available: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float32 (n, A) utility of each specialist, -inf for a general agent, an inactive or unavailable one (not a
    candidate: it neither claims a request nor counts in another's lead) or one with nothing to match on; the
    similarity that weighed more; its label row). General agents are not alternatives here: they
    serve what no specialist is needed for, the "no specialist" option the calibration was fitted with; their
    descriptions still count as what a specialist's must lead (a request about 'analysis' is the strong LLM's kind
    before it is a code tool's)."""
    calibration = snapshot.calibration
    scale = np.float32(1.0 / snapshot.spread)
    usable = snapshot.active if available is None else snapshot.active & available  # (A,) or (n, A)
    specialist = usable & ~snapshot.general
    phrase = np.where(usable, (found.phrase - snapshot.phrase_center) * scale, -np.inf).astype(np.float32)
    phrase_term = np.float32(calibration.phrase_weight) * phrase + np.float32(calibration.margin_weight) * margin(phrase)
    has_phrase = np.isfinite(phrase)
    if not snapshot.example_counts.any():  # no agent has examples: the phrases are all the evidence
        utility = np.where(has_phrase & specialist, phrase_term, -np.inf).astype(np.float32)
        return utility, found.phrase, np.where(np.isfinite(found.phrase), found.phrase_row, -1)
    example = np.where(usable, (found.example - snapshot.example_center) * scale, -np.inf).astype(np.float32)
    example_term = (np.float32(calibration.example_weight) * example + np.float32(calibration.example_bias)
                    + np.float32(calibration.example_margin_weight) * margin(example))
    has_example = np.isfinite(example)
    utility = np.where(has_phrase, phrase_term, 0.0) + np.where(has_example, example_term, 0.0)
    utility = np.where((has_phrase | has_example) & specialist, utility, -np.inf).astype(np.float32)
    by_example = np.isfinite(found.example) & (~np.isfinite(found.phrase) | (example_term > phrase_term))
    similarity = np.where(by_example, found.example, found.phrase)
    known = np.isfinite(found.phrase) | np.isfinite(found.example)
    return utility, similarity, np.where(known, np.where(by_example, found.example_row, found.phrase_row), -1)


#: A margin counts up to this many spreads either way (an agent alone, or far ahead, gains no more).
MARGIN_CAP = 5.0


def margin(similarity: np.ndarray) -> np.ndarray:
    """float32 (n, A) each agent's centered similarity (-inf: absent) minus the best other agent's, or minus 0 (what
    unrelated text reaches) when no other agent does better than that: a lone specialist far above unrelated text
    leads as one far above its rivals does. Within +-:data:`MARGIN_CAP`; 0 where the agent is absent."""
    n, n_agents = similarity.shape
    if n_agents < 2:
        other = np.zeros((n, n_agents), np.float32)
    else:
        rows = np.arange(n)
        first = similarity.argmax(axis=1)
        top = similarity[rows, first]
        rest = similarity.copy()
        rest[rows, first] = -np.inf
        second = rest.max(axis=1)
        other = np.where(np.arange(n_agents)[None, :] == first[:, None], second[:, None], top[:, None])
    lead = np.minimum(np.maximum(similarity - np.maximum(other, 0.0), -MARGIN_CAP), MARGIN_CAP)
    return np.where(np.isfinite(similarity), lead, 0.0).astype(np.float32)


def _softmax_with_none(utility: np.ndarray, none_logit: float) -> np.ndarray:
    """float32 (n, A) softmax over the agents' utilities and one more option, "no specialist", of ``none_logit``
    (subtracting the row's largest utility first, so no exponent overflows)."""
    top = np.maximum(utility.max(axis=1, keepdims=True, initial=-np.inf), np.float32(none_logit))
    weights = np.exp(utility - top)
    total = weights.sum(axis=1, keepdims=True) + np.exp(np.float32(none_logit) - top)
    return (weights / total).astype(np.float32, copy=False)
