"""The report page: one self-contained HTML file, its charts inline SVG, the table behind each chart beside it.

The page loads nothing: no script, no stylesheet, font or image from anywhere, and a Content-Security-Policy
(``default-src 'none'``) tells the browser to refuse any fetch, so opening it offline shows everything. Each chart
sits in ``<figure class="chart" data-chart="NAME">`` with one ``<svg>``; its table in ``<table data-table="NAME">``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tinydancer_duck.errors import InvalidArgument

from ._charts import SHAPE_WORDS, SHAPES, curve_chart, fmt, mix_chart, savings_chart, share, whatif_chart
from ._data import ReportData, sources

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
CHARTS = ("curve", "whatif", "mix", "savings")
_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #222;
       background: #f6f6f4; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 0 0 6px; }
p { margin: 4px 0; font-size: 13px; line-height: 1.45; } .meta { color: #555; }
.headline { background: white; border-left: 5px solid #54a24b; padding: 8px 12px; margin: 10px 0; }
.headline p { font-size: 14.5px; margin: 5px 0; } .headline p:first-child { font-weight: 600; }
.warnings { background: #fff4e0; border-left: 4px solid #f58518; padding: 6px 10px; font-size: 13px; }
.note, .unobserved { background: #eef3fa; border-left: 4px solid #4c78a8; padding: 6px 10px; font-size: 13px;
                     margin: 6px 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(640px, 1fr)); gap: 18px; margin-top: 14px; }
section { background: white; border: 1px solid #ddd; border-radius: 6px; padding: 14px; min-width: 0; }
figure.chart { margin: 8px 0; } figure.chart svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 11.5px; width: 100%; }
th, td { padding: 3px 5px; border-bottom: 1px solid #eee; text-align: right; vertical-align: top;
         overflow-wrap: break-word; }
.caption { color: #555; font-size: 11.5px; margin: 3px 0 0; }
th { background: #fafafa; font-weight: 600; } td.text, th.text { text-align: left; }
td.num { white-space: nowrap; } .iv { display: block; color: #777; font-size: 10.5px; }
footer { margin-top: 18px; font-size: 12px; color: #555; }
"""
#: a table column: (header with its unit, key of the row or function of the row, kind of value: text, int, money,
#: quality, share, number, yes/no). A money, quality or number cell shows the figure's interval under it when the
#: row has ``<key>_low`` and ``<key>_high``.
Column = tuple[str, Any, str]
SOURCES: Column = ("sources", "sources", "text")
CURVE_COLUMNS: list[Column] = [
    ("policy", "policy", "text"), ("willingness to pay ($ per unit of quality)", "willingness_to_pay", "range"),
    ("mean cost ($/request)", "cost", "money"), ("quality (0-1)", "quality", "quality"),
    ("total cost ($)", "total_cost", "money"), ("on hull", "on_hull", "bool")]
WHATIF_COLUMNS: list[Column] = [
    ("budget ($)", "budget", "money"), ("spend ($)", "spend", "money"), ("est. spend ($)", "estimated_spend", "money"),
    ("quality (0-1, served)", "quality", "quality"), ("exp. quality (0-1)", "expected_quality", "quality"),
    ("served", lambda r: f"{r['served']:,}/{r['requests']:,}", "text"),
    ("willingness to pay ($ per unit)", "willingness_to_pay", "number"),
    ("meets threshold", "meets_quality_threshold", "bool")]
PRICES = (("cost_per_call", "per call"), ("cost_per_1k_tokens", "per 1k tokens"), ("cost_per_second", "per second"))
OVERRUN: Column = ("overrun ($)", "budget_overrun", "money")
MIX_COLUMNS: list[Column] = [("policy", "policy", "text"), ("requests", "requests", "int"),
                             ("agents (share of requests)", "agents", "text")]
SAVINGS_COLUMNS: list[Column] = [
    ("policy", "policy", "text"), ("requests", "requests", "int"), ("total cost ($)", "total_cost", "money"),
    ("mean cost ($/request)", "cost", "money"), ("quality (0-1)", "quality", "quality"),
    ("savings vs actual ($)", "savings", "money"), ("savings (%)", "savings_pct", "share"),
    ("quality change", "quality_change", "quality")]
_KINDS: dict[str, Callable[[Any], str]] = {
    "text": str, "int": lambda v: f"{int(v):,}", "money": lambda v: fmt(float(v), 3),
    "quality": lambda v: f"{float(v):.3f}", "share": lambda v: f"{float(v):.1f}", "number": lambda v: fmt(float(v), 3),
    "bool": lambda v: "yes" if v else "no",
    "range": lambda v: f"{fmt(v[0], 3)}–{fmt(v[1], 3)}" if v[0] != v[1] else fmt(v[0], 3)}


def cell(value: Any, kind: str) -> str:
    """A table cell's text: plain notation, a unit's sensible digits (:data:`_KINDS`), '–' when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return _KINDS[kind](value)


def table_html(name: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    head = "".join(f'<th class="{"text" if k == "text" else "num"}">{html.escape(h)}</th>' for h, _, k in columns)
    body = []
    for row in rows:
        cells = []
        for _, key, kind in columns:
            value = key(row) if callable(key) else row.get(key)
            text = html.escape(cell(value, kind))
            if isinstance(key, str) and kind in ("money", "quality", "number", "share"):
                low, high = row.get(f"{key}_low"), row.get(f"{key}_high")
                if low is not None and high is not None:
                    text += f'<span class="iv">{html.escape(cell(low, kind))}–{html.escape(cell(high, kind))}</span>'
            cells.append(f'<td class="{"text" if kind == "text" else "num"}">{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="table"><table data-table="{name}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def curve_rows(table: Any) -> list[dict[str, Any]]:
    """The curve's rows for people: runs of router points with the same cost and quality as one row (their
    willingness to pay as a range), the policy in words, sources as shares."""
    out: list[dict[str, Any]] = []
    for r in table.to_pylist():
        w = r["willingness_to_pay"]
        previous = out[-1] if out else None
        if (previous is not None and r["series"] == previous["series"] == "router"
                and math.isclose(r["cost"], previous["cost"], rel_tol=1e-9, abs_tol=1e-15)
                and math.isclose(r["quality"], previous["quality"], rel_tol=1e-9, abs_tol=1e-12)):
            previous["willingness_to_pay"] = (previous["willingness_to_pay"][0], w)
            previous["points"] += 1
            previous["policy"] = f"{previous['name']} ({previous['points']} equal points)"
            continue
        name = {"router": "router", "zero_router": f"always {r['label']}", "oracle": "oracle"}[r["series"]]
        if r["series"] == "router" and w in (0, math.inf):
            name = f"router: {r['label']}"
        out.append({**r, "name": name, "policy": name, "points": 1,
                    "willingness_to_pay": None if w is None else (w, w), **_sources(r)})
    return out


def _sources(row: Mapping[str, Any]) -> dict[str, str]:
    quality_source, cost_source = sources(row)
    return {"sources": f"quality {quality_source}; cost {cost_source}"}


def with_sources(name: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """The table, its sources as a column when they differ between rows, else as one caption under it (the log's
    own actual policy, whose figures are its own columns, aside)."""
    distinct = {r["sources"] for r in rows if r.get("policy") != "actual (log)"}
    if len(distinct) > 1:
        return table_html(name, rows, [*columns, SOURCES])
    caption = f'<p class="caption">Sources: {html.escape(distinct.pop())}.</p>' if distinct else ""
    return table_html(name, rows, columns) + caption


def mix_rows(mix: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per policy: requests served and each agent's share, largest first."""
    policies: dict[str, list[Mapping[str, Any]]] = {}
    for m in mix:
        policies.setdefault(m["policy"], []).append(m)
    return [{"policy": policy, "requests": sum(m["requests"] for m in rows),
             "agents": ", ".join(f"{m['agent']} {share(m['share'])}" for m in
                                 sorted(rows, key=lambda m: (-m["requests"], m["agent"])))}
            for policy, rows in policies.items()]


def chart_specs(data: ReportData) -> dict[str, dict]:
    """The four Vega-Lite specs of a report, by name (:data:`CHARTS`)."""
    agents = data.agents
    actual_curve = None if data.actual is None else {"cost": data.actual["cost"], "quality": data.actual["quality"]}
    return {"curve": curve_chart(data.curve, data.aiq, actual=actual_curve, calibrated=data.calibrated),
            "whatif": whatif_chart(data.whatif, agents=agents, actual=data.actual,
                                   quality_threshold=data.quality_threshold),
            "mix": mix_chart(data.mix),
            "savings": savings_chart(data.policies, data.actual)}


def _section(name: str, title: str, text: str, svg: str, table: str) -> str:
    return (f'<section id="{name}"><h2>{html.escape(title)}</h2>{text}'
            f'<figure class="chart" data-chart="{name}">{svg}</figure>{table}</section>')


def _header(data: ReportData, version: str) -> str:
    log = html.escape(Path(data.log).name)
    held = "every request" if data.holdout is None else f"the {data.holdout:.0%} of requests held out of training"
    model = (f"outcome router {html.escape(data.outcome_model)}" if data.outcome_model
             else "no outcome router (expected quality is each agent's prior)")
    sentences = "".join(f'<p data-question="{key}">{html.escape(text)}</p>' for key, text in data.headline)
    parts = [f"<h1>tinydancer report: {log}</h1>",
             (f'<p class="meta">{html.escape(data.log)}: {data.requests:,} requests replayed ({held}); '
              f"{len(data.agents)} agents compared; {model}; tinydancer_duck {html.escape(version)}.</p>"),
             f'<div class="headline">{sentences}</div>']
    if data.unobserved:
        parts.append(_unobserved(data))
    if data.actual is None:
        parts.append('<p class="note">This log has no actual policy (no <code>agent</code>/<code>cost</code> '
                     "columns of a choice made): savings against it cannot be computed, so none are shown; the "
                     "policies are compared with each other, the oracle and the best single agent.</p>")
    if data.warnings:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in data.warnings)
        parts.append(f'<div class="warnings"><b>Warnings</b><ul>{items}</ul></div>')
    return "\n".join(parts)


def _unobserved(data: ReportData) -> str:
    """The box naming the agents without evidence in the log, and what the report did with them."""
    def one(agent: Mapping[str, Any]) -> str:
        prices = [f"${fmt(agent[key])} {unit}" for key, unit in PRICES if agent.get(key) is not None]
        price = " + ".join(prices) or "no price"
        return (f"<b>{html.escape(agent['name'])}</b> ({html.escape(agent['agent_type'])}, registered quality "
                f"{cell(agent['quality_score'], 'quality')}, {price})")

    names = "; ".join(one(a) for a in data.unobserved)
    why = ("The log holds no outcome of theirs and no outcome router covers them, so their quality would be their "
           "registered prior alone")
    if data.priors_only:
        what = "No agent has evidence here, so all are compared on their priors"
    elif data.unobserved_included:
        what = "They are compared on their priors, as asked (<code>--include-unobserved</code>)"
    else:
        what = ("They are left out of every policy, the oracle, the best single agent and the quality threshold; "
                "<code>tinydancer report --include-unobserved</code> compares them on their priors")
    return (f'<div class="unobserved" data-unobserved="{len(data.unobserved)}"><b>Agents without evidence in this '
            f"log ({len(data.unobserved)}):</b> {names}. {why}. {what}.</div>")


def _shape(series: str) -> str:
    """How the text names a series' mark: the word for the shape its legend shows."""
    return SHAPE_WORDS[SHAPES[series]]


def _texts(data: ReportData) -> dict[str, str]:
    aiq = data.aiq
    marks = [f"The router swept over willingness to pay ({_shape('router')}s on a line)",
             f"each single agent ({_shape('single agent')}s, labelled)",
             "the zero router's hull (dashed: mixing single agents at random)"]
    if any(r["series"] == "oracle" for r in data.curve.to_pylist()):
        marks.append(f"the oracle ({_shape('oracle')})")
    if data.actual is not None:
        marks.append(f"the log's actual policy ({_shape('actual policy')})")
    if data.calibrated is not None:
        marks.append(f"the router at its calibrated price ({_shape('router at calibrated price')}: willingness to "
                     f"pay ${fmt(data.calibrated['willingness_to_pay'])} per unit of quality)")
    counts: dict[str, int] = {}
    for row in data.whatif.to_pylist():
        for key, value in row.items():
            if key.endswith("_rows"):
                counts[key] = counts.get(key, 0) + value
    quality_source, cost_source = sources(counts)
    return {
        "curve": f"<p>{', '.join(marks[:-1])} and {marks[-1]}. <b>AIQ router {cell(aiq['aiq_router'], 'quality')}"
                 f"</b> against <b>zero router {cell(aiq['aiq_zero_router'], 'quality')}</b> over mean costs "
                 f"${fmt(aiq['c_min'])} to ${fmt(aiq['c_max'])} per request.</p>",
        "whatif": f"<p>What each total budget would have bought over these requests (Lagrangian allocation), "
                  f"spend actually spent against quality (the mean over the requests served); quality threshold "
                  f"{cell(data.quality_threshold, 'quality')} ({html.escape(data.threshold_note)}), met when every "
                  f"request is served at that expected quality. Sources over all budgets: quality "
                  f"{html.escape(quality_source)}; cost {html.escape(cost_source)}.</p>",
        "mix": "<p>Share of the requests each agent serves under each policy"
               + (", the log's actual choices first" if data.actual is not None else "")
               + "; each agent keeps its colour from one report to the next.</p>",
        "savings": "<p>Total cost and mean quality per policy"
                   + (", with savings against the log's actual policy" if data.actual is not None else
                      " (no actual policy in this log: no savings)")
                   + "; each figure's source: <i>observed</i> (the log's outcome), <i>category mean</i>, "
                     "<i>predicted</i> (the outcome router), <i>prior</i> (the agent's quality_score); cost "
                     "<i>logged</i> or <i>estimated</i>.</p>"}


def tables(data: ReportData) -> dict[str, str]:
    """The table behind each chart, by chart name."""
    whatif = [{**r, **_sources(r)} for r in data.whatif.to_pylist()]
    overrun = [OVERRUN] if any((r["budget_overrun"] or 0) > 0 for r in whatif) else []
    return {"curve": with_sources("curve", curve_rows(data.curve), CURVE_COLUMNS),
            "whatif": with_sources("whatif", whatif, WHATIF_COLUMNS[:3] + overrun + WHATIF_COLUMNS[3:]),
            "mix": table_html("mix", mix_rows(data.mix), MIX_COLUMNS),
            "savings": with_sources("savings", data.policies, SAVINGS_COLUMNS)}


def page(data: ReportData, svgs: Mapping[str, str], *, version: str, library: str, render_seconds: float) -> str:
    """The whole HTML text of a report from its data and its four charts' SVG."""
    texts, shown = _texts(data), tables(data)
    titles = {"curve": "Cost-quality curve", "whatif": "Budget what-if frontier", "mix": "Agent mix per policy",
              "savings": "Savings and each figure's source"}
    sections = "\n".join(_section(n, titles[n], texts[n], svgs[n], shown[n]) for n in CHARTS)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>tinydancer report: {html.escape(Path(data.log).name)}</title><style>{_STYLE}</style></head>\n"
            f"<body><header>{_header(data, version)}</header>\n<div class=\"grid\">\n{sections}\n</div>\n"
            f"<footer>Figures gathered in {data.seconds:.2f} s, charts drawn in {render_seconds:.2f} s by "
            f"{html.escape(library)} (Vega-Lite rendered to static SVG offline); this page loads nothing from "
            f"anywhere.</footer></body></html>\n")


def check_report_path(argument: str, path: str | Path) -> Path:
    """``path`` as a Path when it ends in .html or .htm and its folder exists; errors name ``argument``."""
    target = Path(path)
    if target.suffix.lower() not in (".html", ".htm"):
        raise InvalidArgument(argument, str(path), "must end in .html")
    if not target.parent.is_dir():
        raise InvalidArgument(argument, str(path), f"its folder {str(target.parent)!r} does not exist")
    return target

