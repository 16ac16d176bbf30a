"""The router: for n requests and A agents, build (n, A) matrices and decide in numpy (DESIGN §5).

1. candidates: active, circuit not open, not excluded, holding every required capability, avg latency <=
   max_latency_ms, quality at least the minimum asked, estimated cost <= max_cost, not over its own budget,
   estimated cost <= budget_remaining (:data:`tinydancer_duck.routing._candidates.CONSTRAINTS`, in that order);
2. estimated cost: :mod:`tinydancer_duck.registry._costs`;
3. p = P(agent can serve the request) in [0, 1], calibrated (:mod:`._evidence`); a row where no candidate has any
   evidence (p = 0 for all: only specialists, none of them matching) is decided by its objective alone (p = 1) and
   the reasoning says so;
4. score by objective over expected quality E[q] = p * q, normalized within each request's candidates
   (:mod:`._objectives`): ``cost`` and ``latency`` take the cheapest (fastest) candidate whose p clears the
   calibrated level, else the least cost (latency) per request served, C / p; ``quality`` the best E[q];
   ``balanced`` p * (w_c Cmin/C + w_l Lmin/L) + w_q E[q], so price and speed count only as far as an agent can serve
   the request; ``quality_per_dollar`` E[q] / C; a request with a willingness to pay w scores E[q] - C / w
   (:func:`value_scores`). No multiplicative gate: a weak match elsewhere never removes a general agent, and a
   specialist wins only on evidence;
5. decision: a matched semantic route whose target agent is a candidate decides; otherwise the best candidate
   (ties go to the alphabetically first). Confidence = softmax of the candidate scores
   at ``Settings.confidence_temperature``, estimated cost and latency, and a reasoning string. No candidate gives
   agent -1 and a reasoning naming the constraint that emptied the set; a NULL request gives -1, never an error.

Other services feed a batch through :class:`Signals` (a classifier's probability of serving, predicted quality, open
circuits, agents over budget, semantic routes); the router itself reads no store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck._numeric import value_scores
from tinydancer_duck.registry import AgentSnapshot, estimated_cost
from tinydancer_duck.settings import Settings

from ._candidates import CONSTRAINTS, removal_codes
from ._decisions import Decisions, ratio_of, ratio_to_best
from ._evidence import evidence, reading_weight
from ._explain import (
    FEW_ROWS,
    GENERAL,
    MATCHED,
    NO_EVIDENCE,
    PART_READ,
    READ,
    ROUTE_DECIDED,
    ROUTE_TARGET_REMOVED,
    ROUTE_TARGET_UNKNOWN,
    SIGNALLED,
    UNREAD,
    Reading,
    explain,
    few_number,
    one_detail,
    winner_detail,
)
from ._explore import exploration_notes, explored
from ._objectives import OBJECTIVES, Terms
from ._options import BY_VALUE, OBJECTIVE_NAMES, OptionColumns


@dataclass(frozen=True)
class Requests:
    """A batch of n requests: float32 (n, D) L2-normalized embeddings, bool (n,) validity (a request that is there:
    not NULL, not blank), float64 (n,) tokens_in; for texts the embedder reads, int (n,) tokens it knows as whole
    words and tokens in all (None for embeddings: all evidence counts)."""

    embeddings: np.ndarray
    valid: np.ndarray
    tokens_in: np.ndarray
    known: np.ndarray | None = None
    total: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.valid)

    def take(self, rows: np.ndarray) -> Requests:
        pick = (lambda values: None if values is None else values[rows])
        return Requests(self.embeddings[rows], self.valid[rows], self.tokens_in[rows], pick(self.known),
                        pick(self.total))


@dataclass(frozen=True)
class Signals:
    """What other services know about a batch; every field is optional.

    match : float32 (n, A) in [0, 1], each specialist's probability of serving, replacing the similarities (a
        capability classifier's probability mass, or a replay's recorded ``Scored.match``).
    quality : float64 (n, A) expected quality per (request, agent) replacing quality_score in the objectives.
    circuit_open, over_budget : bool (A,) agents the health breaker or their own budget take out.
    route, route_target : int (n,) the semantic route matched per request and the agent it names (-1: none);
        ``route_names`` holds the routes' names. A matched route whose target is a candidate decides the request.
    route_similarity, route_threshold : float (n,) the matched route's similarity and the threshold it cleared.
    cost : float64 (n, A) what each (request, agent) costs when it is known better than the estimate (a replayed
        log's per-agent costs), so a budget is held in what was really spent.
    unobserved : bool (n, A) pairs a replay with ``observed_only`` must not choose: the log holds no outcome there.
    """

    match: np.ndarray | None = None
    quality: np.ndarray | None = None
    circuit_open: np.ndarray | None = None
    over_budget: np.ndarray | None = None
    route: np.ndarray | None = None
    route_target: np.ndarray | None = None
    route_names: tuple[str, ...] = ()
    route_similarity: np.ndarray | None = None
    route_threshold: np.ndarray | None = None
    cost: np.ndarray | None = None
    unobserved: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> Signals:
        """The signals of a subset of the requests (per-agent fields are shared)."""
        per_row = (lambda value: None if value is None else value[rows])
        return Signals(per_row(self.match), per_row(self.quality) if self.quality is not None
                       and self.quality.ndim == 2 else self.quality, self.circuit_open, self.over_budget,
                       per_row(self.route), per_row(self.route_target), self.route_names,
                       per_row(self.route_similarity), per_row(self.route_threshold), per_row(self.cost),
                       per_row(self.unobserved))


NO_SIGNALS = Signals()


@dataclass(frozen=True)
class Scored:
    """The (n, A) matrices a decision is made from; score is -inf off the candidate set.

    similarity : float32 the similarity behind each probability (its phrases' or its examples', or a classifier's
    probability mass); matched : int32 the row of ``AgentSnapshot.labels`` it came from (-1: a signal gave it);
    p_serve : float32 the probability of serving the objectives weighed (1 on a row with no evidence at all);
    no_evidence : bool (n,) those rows; quality : q per agent (A,) or per request (n, A).
    """

    similarity: np.ndarray
    cost: np.ndarray
    reasons: np.ndarray
    candidate: np.ndarray
    p_serve: np.ndarray
    no_evidence: np.ndarray
    agent_quality: np.ndarray  # (A,) or (n, A): quality q, as the objectives saw it (before p_serve)
    score: np.ndarray
    matched: np.ndarray

    @property
    def quality(self) -> np.ndarray:
        """float64 (n, A) quality q (a read-only broadcast view when it is per agent)."""
        return np.broadcast_to(self.agent_quality, self.score.shape)

    @property
    def expected(self) -> np.ndarray:
        """float64 (n, A) expected quality E[q] = p_serve * q."""
        return self.p_serve * self.quality

    @property
    def match(self) -> np.ndarray:
        """The probability of serving as a :attr:`Signals.match` that decides the same again (a replay feeds it
        back): p_serve, with rows of no evidence at 0 (the router then lets the objective decide them again)."""
        return np.where(self.no_evidence[:, None], np.float32(0.0), self.p_serve)

    _PER_ROW = ("similarity", "cost", "reasons", "candidate", "p_serve", "no_evidence", "score", "matched")

    def take(self, rows: np.ndarray) -> Scored:
        """The matrices of a subset of the requests (a per-agent quality is shared)."""
        quality = self.agent_quality if self.agent_quality.ndim == 1 else self.agent_quality[rows]
        return replace(self, agent_quality=quality, **{f: getattr(self, f)[rows] for f in self._PER_ROW})

    @staticmethod
    def concat(parts: list[Scored]) -> Scored:
        """The matrices of consecutive row ranges, in order (a per-agent quality becomes per row when the parts
        differ)."""
        first = parts[0]
        same = all(p.agent_quality.ndim == 1 and np.array_equal(p.agent_quality, first.agent_quality)
                   for p in parts)
        quality = first.agent_quality if same else np.concatenate([p.quality for p in parts])
        return replace(first, agent_quality=quality,
                       **{f: np.concatenate([getattr(p, f) for p in parts]) for f in Scored._PER_ROW})


def score_batch(requests: Requests, options: OptionColumns, snapshot: AgentSnapshot, settings: Settings,
                signals: Signals = NO_SIGNALS) -> Scored:
    """Candidates, costs, probabilities of serving and objective scores for every (request, agent) pair."""
    n, n_agents = len(requests), snapshot.size
    cost = estimated_cost(requests.tokens_in, snapshot) if signals.cost is None else signals.cost
    reasons = removal_codes(options, snapshot, cost, signals, requests.tokens_in)
    candidate = (reasons == 0) & requests.valid[:, None]
    reading = reading_weight(requests.known, requests.total, snapshot)
    if signals.match is not None:
        found = evidence(None, snapshot, signal=signals.match, reading=reading, available=candidate)
    else:
        found = evidence(snapshot.similarities(requests.embeddings), snapshot, reading=reading, available=candidate)
    no_evidence = ~(np.where(candidate, found.p_serve, 0.0) > 0).any(axis=1)
    p_serve = np.where(no_evidence[:, None], np.float32(1.0), found.p_serve) if no_evidence.any() else found.p_serve
    quality = snapshot.quality if signals.quality is None else signals.quality
    clear_level = snapshot.calibration.clear_level

    def scores(code: int, rows: slice | np.ndarray) -> np.ndarray:
        rows_quality = quality if quality.ndim == 1 else quality[rows]
        if code == BY_VALUE:
            return np.where(candidate[rows], value_scores(p_serve[rows] * rows_quality, cost[rows],
                                                          options.willingness_to_pay[rows]), -np.inf)
        if code >= len(OBJECTIVES):
            raise ValueError("optimize_for='learned' reached the router without its willingness to pay")
        terms = Terms(cost[rows], snapshot.latency_ms, rows_quality, p_serve[rows], candidate[rows], settings,
                      clear_level)
        return np.where(candidate[rows], OBJECTIVES[OBJECTIVE_NAMES[code]](terms), -np.inf)

    groups = objective_groups(options.objective)
    if len(groups) == 1:  # one objective for the whole batch: its scores are the matrix
        score = scores(*groups[0])
    else:
        score = np.full((n, n_agents), -np.inf)
        for code, rows in groups:
            score[rows] = scores(code, rows)
    return Scored(found.similarity, cost, reasons, candidate, p_serve, no_evidence, quality, score, found.row)


def objective_groups(objective: np.ndarray) -> list[tuple[int, slice | np.ndarray]]:
    """(objective code, rows) for each objective in the batch. The usual batch has one (SQL passes a constant):
    its rows are ``slice(None)``, so the (n, A) matrices are used as views instead of copied by a mask."""
    if len(objective) == 0:
        return []
    if (objective == objective[0]).all():
        return [(int(objective[0]), slice(None))]
    return [(int(code), objective == code) for code in np.unique(objective)]


def route(requests: Requests, options: OptionColumns, snapshot: AgentSnapshot, settings: Settings,
          signals: Signals = NO_SIGNALS) -> Decisions:
    """Decide an agent for every request (see the module docstring for the rules)."""
    n, n_agents = len(requests), snapshot.size
    scored = score_batch(requests, options, snapshot, settings, signals)
    candidate, score = scored.candidate, scored.score
    n_candidates = candidate.sum(axis=1)
    has_candidate = n_candidates > 0
    winner = np.where(has_candidate, np.argmax(score, axis=1) if n_agents else 0, -1)
    semantic = semantic_status(signals, candidate, n)
    if signals.route is not None:
        winner = np.where(semantic == ROUTE_DECIDED, signals.route_target, winner)
    chosen, propensity, explores = winner, np.where(has_candidate, 1.0, np.nan), None
    if options.explore is not None:
        chosen, propensity, explores = explored(winner, candidate, options.explore, requests.embeddings,
                                                options.explore_seed)
    rows = np.arange(n)
    safe = np.maximum(chosen, 0)
    top = np.where(has_candidate, score[rows, safe], 0.0) if n_agents else np.zeros(n)
    # a non-candidate scores -inf, so its weight is exp(-inf) = 0
    shifted = (score - top[:, None]) / settings.confidence_temperature
    if signals.route is None and explores is None:  # top is the row's best score: every exponent is <= 0
        weights = np.exp(shifted)
    else:
        with np.errstate(over="ignore"):  # a route's target or an explored agent may score far below the best
            weights = np.exp(shifted)
    confidence = np.where(has_candidate, 1.0 / np.maximum(weights.sum(axis=1), 1.0), np.nan)
    pick = (lambda values: np.where(has_candidate, values, np.nan))
    no_evidence = scored.no_evidence & has_candidate
    reasoning = _with_window_notes(
        explain(requests.valid, options.objective, winner, no_evidence, scored.reasons, n_candidates, snapshot,
                semantic=semantic, route=signals.route, route_names=signals.route_names,
                detail=_detail(requests, snapshot, scored, signals, winner, semantic, no_evidence)),
        requests, snapshot, scored.reasons, winner)
    if explores is not None and explores.any():
        reasoning = exploration_notes(reasoning, explores, chosen, propensity, options.explore, n_candidates,
                                      snapshot.name_list())
    return Decisions(
        agent=chosen,
        confidence=confidence,
        propensity=propensity,
        estimated_cost=pick(scored.cost[rows, safe] if n_agents else np.zeros(n)),
        estimated_latency_ms=pick(snapshot.latency_ms[safe] if n_agents else np.zeros(n)),
        candidates=n_candidates.astype(np.int32),
        reasoning=reasoning,
        scored=scored,
    )


_WINDOW = CONSTRAINTS.index("context_window") + 1


def _with_window_notes(reasoning: pa.Array, requests: Requests, snapshot: AgentSnapshot, reasons: np.ndarray,
                       winner: np.ndarray) -> pa.Array:
    """The reasoning, with the numbers behind a context-window removal: "context window: 310000 tokens > gpt-4's
    128000" (the largest window that was too small) and, when nobody could read the request, the largest window
    there is. Only the rare rows that hit a window pay for the formatting."""
    hit = np.flatnonzero((reasons == _WINDOW).any(axis=1) & requests.valid) if reasons.size else np.zeros(0, int)
    if not len(hit):
        return reasoning
    names, window = snapshot.name_list(), snapshot.context_window
    largest = int(np.nanargmax(window))
    notes = [""] * len(winner)
    for i in hit.tolist():
        removed = np.flatnonzero(reasons[i] == _WINDOW)
        agent = int(removed[np.argmax(window[removed])])
        needed = int(requests.tokens_in[i] + snapshot.output_tokens[agent])
        notes[i] = f"; context window: {needed} tokens > {names[agent]}'s {int(window[agent])}"
        if winner[i] < 0:
            notes[i] += f"; the largest window is {names[largest]}'s {int(window[largest])} tokens"
    return pc.binary_join_element_wise(reasoning, pa.array(notes, pa.string()), "")


def _detail(requests: Requests, snapshot: AgentSnapshot, scored: Scored, signals: Signals, winner: np.ndarray,
            semantic: np.ndarray, no_evidence: np.ndarray) -> pa.Array:
    """The winner's numbers for each reasoning (:func:`winner_detail`), or the route's when a route decided."""
    n = len(winner)
    if not snapshot.size or not n:
        return pa.array([""] * n, pa.string())
    decided = semantic == ROUTE_DECIDED
    if n <= FEW_ROWS:
        return pa.array([_one_route_detail(signals, i) if decided[i] else
                         _one_winner_detail(requests, snapshot, scored, i, int(w), bool(no_evidence[i]))
                         for i, w in enumerate(winner.tolist())], pa.string())
    rows, safe = np.arange(n), np.maximum(winner, 0)
    by_objective = np.where(decided, -1, winner)
    cheapest = np.min(np.where(scored.candidate, scored.cost, np.inf), axis=1, initial=np.inf)
    fastest = np.min(np.where(scored.candidate, snapshot.latency_ms, np.inf), axis=1, initial=np.inf)
    matched = scored.matched[rows, safe]
    case = np.select([no_evidence, snapshot.general[safe], matched >= 0], [NO_EVIDENCE, GENERAL, MATCHED],
                     SIGNALLED).astype(np.int8)
    names = snapshot.labels or ("",)  # a label for each winner's best row (read only where it matched)
    at = np.clip(matched, 0, len(names) - 1)
    labels = pa.array(names, pa.string()).take(pa.array(at, pa.int64()))
    reading = Reading.of(reading_weight(requests.known, requests.total, snapshot), requests.known, requests.total)
    detail = winner_detail(by_objective, case, scored.p_serve[rows, safe], scored.similarity[rows, safe], labels,
                           reading,
                           ratio_to_best(scored.cost[rows, safe], cheapest),
                           ratio_to_best(snapshot.latency_ms[safe], fastest), scored.quality[rows, safe])
    if not decided.any():
        return detail
    route_part = pc.binary_join_element_wise(
        " (similarity ", pc.cast(pc.round(pa.array(np.nan_to_num(signals.route_similarity), pa.float64()), 2),
                                 pa.string()),
        ", threshold ", pc.cast(pc.round(pa.array(np.nan_to_num(signals.route_threshold), pa.float64()), 2),
                                pa.string()), ")", "")
    return pc.if_else(pa.array(decided), route_part, detail)


def _one_route_detail(signals: Signals, i: int) -> str:
    """:func:`_detail` of request i when its semantic route decided: the route's similarity and threshold."""
    similarity, threshold = (float(np.nan_to_num(values[i])) for values in (signals.route_similarity,
                                                                              signals.route_threshold))
    return f" (similarity {few_number(similarity, 2)}, threshold {few_number(threshold, 2)})"


def _one_winner_detail(requests: Requests, snapshot: AgentSnapshot, scored: Scored, i: int, winner: int,
                       no_evidence: bool) -> str:
    """:func:`_detail` of request i in Python scalars: for a one-request call, the dozen numpy calls on one-element
    arrays cost more than the decision. The same numbers and the same text as :func:`winner_detail`'s (``one_detail``,
    ``few_number``)."""
    if winner < 0:
        return ""
    candidate, cost = scored.candidate[i].tolist(), scored.cost[i].tolist()
    latency = snapshot.latency_ms.tolist()
    cheapest = min((c for c, ok in zip(cost, candidate) if ok), default=math.inf)
    fastest = min((t for t, ok in zip(latency, candidate) if ok), default=math.inf)
    matched = int(scored.matched[i, winner])
    case = NO_EVIDENCE if no_evidence else GENERAL if snapshot.general[winner] else MATCHED if matched >= 0 \
        else SIGNALLED
    label = snapshot.labels[matched] if case == MATCHED else ""
    quality = scored.agent_quality[winner] if scored.agent_quality.ndim == 1 else scored.agent_quality[i, winner]
    p_serve, similarity = float(scored.p_serve[i, winner]), float(scored.similarity[i, winner])
    cost_ratio, latency_ratio = ratio_of(cost[winner], cheapest), ratio_of(latency[winner], fastest)
    state, known, total = READ, "", ""
    if requests.known is not None and requests.total is not None:
        weight = float(reading_weight(requests.known[i:i + 1], requests.total[i:i + 1], snapshot)[0])
        if weight < 1:
            state = UNREAD if weight <= 0 else PART_READ
            known, total = few_number(float(requests.known[i]), 1), str(int(requests.total[i]))
    return one_detail(case, state, few_number(p_serve, 2), few_number(similarity, 2), label, known, total,
                      few_number(cost_ratio, 1), few_number(latency_ratio, 1), few_number(float(quality), 2))


def semantic_status(signals: Signals, candidate: np.ndarray, n: int) -> np.ndarray:
    """int8 (n,): what the matched semantic route (if any) did for each request."""
    status = np.zeros(n, np.int8)
    if signals.route is None:
        return status
    matched = signals.route >= 0
    target = signals.route_target
    known = matched & (target >= 0)
    usable = known.copy()
    usable[known] = candidate[np.flatnonzero(known), target[known]]
    status[matched & ~known] = ROUTE_TARGET_UNKNOWN
    status[known & ~usable] = ROUTE_TARGET_REMOVED
    status[usable] = ROUTE_DECIDED
    return status
