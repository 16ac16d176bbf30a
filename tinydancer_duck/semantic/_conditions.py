"""Conditions of semantic routes: parse and validate the JSON, then evaluate it for a batch of rows in numpy.

A route's ``conditions`` is a JSON object with any of:

- ``time_range``: ``["09:00", "17:30"]`` a daily UTC window [start, end) that wraps past midnight when start > end
  (``["22:00", "06:00"]``); or ``["2024-01-01T00:00:00Z", "2024-07-01"]`` an absolute UTC window [start, end)
  (a datetime without an offset is UTC).
- ``user_tiers``: ``["pro", "enterprise"]`` the route matches only rows whose user tier is one of these (exact,
  case-sensitive); a row with a NULL tier does not match a tier-restricted route.
- ``rate_limit_per_min``: an integer >= 0; at most this many rows per UTC minute may be routed to the route.

Everything is evaluated against the row's own timestamp and user tier (NULL timestamp = now), so replaying a log
sees each route as it would have behaved at that time. The rate limit is counted over the rows of one call, in
row order (see :func:`rate_limit_pass`), on top of the matches earlier calls of any process counted in the store's
live ledger (``tinydancer_duck/store/_ledger.py``) when the call decides at the current time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck._validate import check_int, check_json_value, check_text, load_json
from tinydancer_duck.errors import InvalidArgument

KEYS = ("time_range", "user_tiers", "rate_limit_per_min")
US_PER_DAY = 86_400_000_000
US_PER_MIN = 60_000_000
_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_NO_LIMIT = -1


def parse_conditions(value: Any) -> str | None:
    """Validate one route's conditions (JSON text, a dict, or NULL) and return canonical JSON, or None for none.

    raises : InvalidArgument naming ``conditions`` (or the offending key) and the value
    """
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        parsed = load_json("conditions", value)
    else:
        check_json_value("conditions", value)
        parsed = value
    if not isinstance(parsed, dict):
        raise InvalidArgument("conditions", value, "must be a JSON object")
    unknown = sorted(set(parsed) - set(KEYS))
    if unknown:
        raise InvalidArgument("conditions", unknown[0], f"is not a condition; expected any of {', '.join(KEYS)}")
    out: dict[str, Any] = {}
    if parsed.get("time_range") is not None:
        _window(parsed["time_range"])  # validates
        out["time_range"] = list(parsed["time_range"])
    if parsed.get("user_tiers") is not None:
        tiers = parsed["user_tiers"]
        if isinstance(tiers, str):
            tiers = [tiers]
        if not isinstance(tiers, list) or not tiers or not all(isinstance(t, str) and t for t in tiers):
            raise InvalidArgument("conditions.user_tiers", parsed["user_tiers"],
                                  "must be a non-empty list of non-empty strings")
        for tier in tiers:
            check_text("conditions.user_tiers", tier)
        out["user_tiers"] = sorted(set(tiers))
    if parsed.get("rate_limit_per_min") is not None:
        limit = parsed["rate_limit_per_min"]
        out["rate_limit_per_min"] = check_int("conditions.rate_limit_per_min", limit, minimum=0, maximum=2**31 - 1)
    return json.dumps(out, sort_keys=True) if out else None


def _window(value: Any) -> tuple[str, int, int]:
    """('daily', start_us, end_us) within a day, or ('absolute', start_us, end_us) since the epoch."""
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(isinstance(v, str) for v in value):
        raise InvalidArgument("conditions.time_range", value, 'must be two strings, e.g. ["09:00", "17:00"]')
    daily = [_time_of_day(v) for v in value]
    if all(d is not None for d in daily):
        if daily[0] == daily[1]:
            raise InvalidArgument("conditions.time_range", value, "start and end must differ")
        return "daily", daily[0], daily[1]
    try:
        start, end = (_instant(v) for v in value)
    except ValueError:
        raise InvalidArgument("conditions.time_range", value,
                              "must be two UTC times of day (HH:MM[:SS]) or two ISO datetimes") from None
    if start >= end:
        raise InvalidArgument("conditions.time_range", value, "start must be before end")
    return "absolute", start, end


def _time_of_day(text: str) -> int | None:
    match = _TIME_OF_DAY.match(text.strip())
    if not match:
        return None
    hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3] or 0)
    if hours > 24 or minutes > 59 or seconds > 59 or (hours == 24 and (minutes or seconds)):
        raise InvalidArgument("conditions.time_range", text, "is not a valid time of day")
    return ((hours * 60 + minutes) * 60 + seconds) * 1_000_000


def _instant(text: str) -> int:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1_000_000)


@dataclass(frozen=True)
class RouteConditions:
    """Conditions of R routes as arrays.

    daily : bool (R,) whether a daily window applies; day_start, day_end : int64 (R,) µs since UTC midnight.
    absolute : bool (R,); abs_start, abs_end : int64 (R,) µs since the epoch.
    tier_vocab : the distinct tiers named by any route; tier_allowed : bool (T, R); has_tiers : bool (R,).
    rate_limit : int64 (R,), -1 where unlimited.
    """

    daily: np.ndarray
    day_start: np.ndarray
    day_end: np.ndarray
    absolute: np.ndarray
    abs_start: np.ndarray
    abs_end: np.ndarray
    tier_vocab: pa.Array
    tier_allowed: np.ndarray
    has_tiers: np.ndarray
    rate_limit: np.ndarray

    @property
    def conditioned(self) -> np.ndarray:
        """Indices of routes with a time or tier condition (rate limits are handled separately)."""
        return np.flatnonzero(self.daily | self.absolute | self.has_tiers)

    @property
    def limited(self) -> np.ndarray:
        return np.flatnonzero(self.rate_limit >= 0)

    def tier_codes(self, user_tier: pa.Array | None, n: int) -> np.ndarray:
        """int64 (n,) index of each row's tier in ``tier_vocab``; -1 for NULL or a tier no route names."""
        if user_tier is None or len(self.tier_vocab) == 0:
            return np.full(n, -1, np.int64)
        codes = pc.index_in(user_tier.cast(pa.string()), value_set=self.tier_vocab)
        return np.asarray(codes.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)

    def allowed(self, ts_us: np.ndarray, tiers: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """bool (n, len(columns)): which of the routes ``columns`` pass their time and tier conditions per row.

        ts_us : int64 (n,) µs since the epoch (UTC); tiers : int64 (n,) from :meth:`tier_codes`.
        """
        ts = ts_us[:, None]
        ok = np.ones((len(ts_us), len(columns)), bool)
        daily = self.daily[columns]
        if daily.any():
            tod = ts % US_PER_DAY
            start, end = self.day_start[columns], self.day_end[columns]
            inside = np.where(start <= end, (tod >= start) & (tod < end), (tod >= start) | (tod < end))
            ok &= inside | ~daily
        absolute = self.absolute[columns]
        if absolute.any():
            ok &= ((ts >= self.abs_start[columns]) & (ts < self.abs_end[columns])) | ~absolute
        has_tiers = self.has_tiers[columns]
        if has_tiers.any():
            known = tiers >= 0
            by_tier = np.zeros((len(tiers), len(columns)), bool)
            by_tier[known] = self.tier_allowed[tiers[known]][:, columns]
            ok &= by_tier | ~has_tiers
        return ok


def build_conditions(texts: Sequence[str | None]) -> RouteConditions:
    """Arrays for R routes from their stored (canonical) conditions JSON."""
    r = len(texts)
    daily, absolute, has_tiers = (np.zeros(r, bool) for _ in range(3))
    day_start, day_end, abs_start, abs_end = (np.zeros(r, np.int64) for _ in range(4))
    rate_limit = np.full(r, _NO_LIMIT, np.int64)
    tiers_of: list[list[str]] = [[] for _ in range(r)]
    for i, text in enumerate(texts):
        if not text:
            continue
        parsed = json.loads(text)
        if parsed.get("time_range") is not None:
            kind, start, end = _window(parsed["time_range"])
            if kind == "daily":
                daily[i], day_start[i], day_end[i] = True, start, end
            else:
                absolute[i], abs_start[i], abs_end[i] = True, start, end
        if parsed.get("user_tiers"):
            has_tiers[i] = True
            tiers_of[i] = list(parsed["user_tiers"])
        if parsed.get("rate_limit_per_min") is not None:
            rate_limit[i] = int(parsed["rate_limit_per_min"])
    vocab = sorted({t for tiers in tiers_of for t in tiers})
    position = {t: j for j, t in enumerate(vocab)}
    allowed = np.zeros((len(vocab), r), bool)
    for i, tiers in enumerate(tiers_of):
        for t in tiers:
            allowed[position[t], i] = True
    return RouteConditions(daily, day_start, day_end, absolute, abs_start, abs_end, pa.array(vocab, pa.string()),
                           allowed, has_tiers, rate_limit)


def epoch_us(ts: Any, n: int, *, now_us: int) -> np.ndarray:
    """int64 (n,) µs since the epoch (UTC) from None, an int64 µs column, numpy datetime64, or an Arrow timestamp
    column (naive = UTC); NULL rows (or no ``ts``) become ``now_us``."""
    if ts is None:
        return np.full(n, now_us, np.int64)
    if isinstance(ts, pa.ChunkedArray):
        ts = ts.combine_chunks()
    if isinstance(ts, pa.Array):
        if pa.types.is_timestamp(ts.type):
            ts = ts.cast(pa.timestamp("us", tz=ts.type.tz)).view(pa.int64())
        elif not (pa.types.is_integer(ts.type) or pa.types.is_null(ts.type)):
            raise InvalidArgument("ts", str(ts.type), "expected a timestamp")
        values = np.asarray(ts.cast(pa.int64()).fill_null(now_us).to_numpy(zero_copy_only=False), np.int64)
    else:
        array = np.asarray(ts)
        if np.issubdtype(array.dtype, np.datetime64):
            missing = np.isnat(array)
            values = np.where(missing, now_us, array.astype("datetime64[us]").astype(np.int64))
        else:
            values = np.asarray(array, dtype=np.int64)
        if values.ndim == 0:
            values = np.full(n, int(values))
    if values.shape != (n,):
        raise InvalidArgument("ts", f"{values.shape[0]} values", f"expected {n}")
    return values.astype(np.int64, copy=False)


def rate_limit_pass(choice: np.ndarray, minute: np.ndarray, route: int, limit: int,
                    carried: dict[tuple[int, int], int]) -> tuple[np.ndarray, np.ndarray]:
    """Which rows' choice of ``route`` fits its per-minute limit, counting rows in order.

    choice : int64 (n,) chosen route per row (-1 none); minute : int64 (n,) UTC minute of each row
    carried : matches already counted per (route, minute) by earlier rows (earlier chunks of the same call)
    returns : (over bool (n,): rows that chose ``route`` beyond the limit,
               exhausted bool (n,): rows for which ``route`` already had ``limit`` matches by earlier rows)
    """
    n = len(choice)
    hit = (choice == route).astype(np.int64)
    order = np.lexsort((np.arange(n), minute))  # by minute, then row order
    m_sorted, h_sorted = minute[order], hit[order]
    starts = np.flatnonzero(np.r_[True, m_sorted[1:] != m_sorted[:-1]])
    inclusive = np.cumsum(h_sorted)
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    before_sorted = inclusive - h_sorted - (inclusive[group_start] - h_sorted[group_start])
    base = np.array([carried.get((route, int(m)), 0) for m in m_sorted[starts]], np.int64)
    before_sorted = before_sorted + np.repeat(base, np.diff(np.r_[starts, n]))
    before = np.empty(n, np.int64)
    before[order] = before_sorted
    exhausted = before >= limit
    return (hit == 1) & exhausted, exhausted
