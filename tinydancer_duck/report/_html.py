"""The report page: one self-contained HTML file, its charts inline SVG, the table behind each chart beside it.

The page loads nothing: no script, no stylesheet, font or image from anywhere, and a Content-Security-Policy
(``default-src 'none'``) tells the browser to refuse any fetch, so opening it offline shows everything. Each chart
sits in ``<figure class="chart" data-chart="NAME">`` with one ``<svg>``; its table in ``<table data-table="NAME">``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tinydancer_duck.errors import InvalidArgument

from ._charts import curve_chart, fmt, mix_chart, savings_chart, whatif_chart
from ._data import ReportData, sources

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
CHARTS = ("curve", "whatif", "mix", "savings")
_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #222;
       background: #f6f6f4; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 0 0 6px; }
p { margin: 4px 0; font-size: 13px; line-height: 1.45; } .meta { color: #555; }
.warnings { background: #fff4e0; border-left: 4px solid #f58518; padding: 6px 10px; font-size: 13px; }
.note { background: #eef3fa; border-left: 4px solid #4c78a8; padding: 6px 10px; font-size: 13px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(640px, 1fr)); gap: 18px; margin-top: 14px; }
section { background: white; border: 1px solid #ddd; border-radius: 6px; padding: 14px; min-width: 0; }
figure.chart { margin: 8px 0; } figure.chart svg { max-width: 100%; height: auto; }
.table { max-height: 260px; overflow: auto; border: 1px solid #eee; }
table { border-collapse: collapse; font-size: 11.5px; width: 100%; }
th, td { padding: 3px 6px; border-bottom: 1px solid #eee; text-align: right; white-space: nowrap; }
th { position: sticky; top: 0; background: #fafafa; } td.text, th.text { text-align: left; }
footer { margin-top: 18px; font-size: 12px; color: #555; }
"""
_COUNTS = (("observed_rows", "observed"), ("category_mean_rows", "category mean"), ("predicted_rows", "predicted"),
           ("quality_score_rows", "prior"), ("logged_cost_rows", "logged cost"),
           ("estimated_cost_rows", "estimated cost"))
#: the columns of each chart's table: (header, key or function of the row, significant digits or None for text).
Column = tuple[str, Any, int | None]
CURVE_COLUMNS: list[Column] = [
    ("series", "series", None), ("label", "label", None), ("willingness to pay", "willingness_to_pay", 6),
    ("mean cost ($)", "cost", 6), ("quality", "quality", 6), ("total cost ($)", "total_cost", 6),
    ("requests", "requests", 0), ("on hull", "on_hull", None), *((h, k, 0) for k, h in _COUNTS)]
WHATIF_COLUMNS: list[Column] = [
    ("budget ($)", "budget", 6), ("spend ($)", "spend", 6), ("estimated spend ($)", "estimated_spend", 6),
    ("overrun ($)", "budget_overrun", 6), ("willingness to pay", "willingness_to_pay", 6),
    ("expected quality", "expected_quality", 6), ("quality", "quality", 6), ("served", "served", 0),
    ("requests", "requests", 0), ("meets threshold", "meets_quality_threshold", None), *((h, k, 0) for k, h in _COUNTS)]
MIX_COLUMNS: list[Column] = [("policy", "policy", None), ("agent", "agent", None), ("requests", "requests", 0),
                             ("share", "share", 6), ("cost ($)", "cost", 6), ("quality", "quality", 6)]
SAVINGS_COLUMNS: list[Column] = [
    ("policy", "policy", None), ("requests", "requests", 0), ("total cost ($)", "total_cost", 6),
    ("mean cost ($)", "cost", 6), ("quality", "quality", 6), ("savings vs actual ($)", "savings", 6),
    ("savings (%)", "savings_pct", 4), ("quality change", "quality_change", 6),
    ("quality source", "quality_source", None), ("cost source", "cost_source", None)]


def cell(value: Any, digits: int | None) -> str:
    """A table cell's text: numbers to ``digits`` significant digits (0: an integer), '–' when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool) or digits is None:
        return {True: "yes", False: "no"}.get(value, str(value)) if isinstance(value, bool) else str(value)
    if digits == 0:
        return f"{int(value):,}"
    return fmt(float(value), digits)


def table_html(name: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    head = "".join(f'<th class="{"text" if d is None else "num"}">{html.escape(h)}</th>' for h, _, d in columns)
    body = []
    for row in rows:
        cells = []
        for _, key, digits in columns:
            value = key(row) if callable(key) else row.get(key)
            cells.append(f'<td class="{"text" if digits is None else "num"}">{html.escape(cell(value, digits))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="table"><table data-table="{name}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


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
    parts = [f"<h1>tinydancer report: {log}</h1>",
             (f'<p class="meta">{html.escape(data.log)}: {data.requests:,} requests replayed ({held}); '
              f"{len(data.agents)} agents; {model}; tinydancer_duck {html.escape(version)}.</p>")]
    if data.actual is None:
        parts.append('<p class="note">This log has no actual policy (no <code>agent</code>/<code>cost</code> '
                     "columns of a choice made): savings against it cannot be computed, so none are shown; the "
                     "policies are compared with each other, the oracle and the best single agent.</p>")
    if data.warnings:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in data.warnings)
        parts.append(f'<div class="warnings"><b>Warnings</b><ul>{items}</ul></div>')
    return "\n".join(parts)


def _texts(data: ReportData) -> dict[str, str]:
    aiq = data.aiq
    calibrated = "" if data.calibrated is None else (
        f" The triangle is the router at its calibrated price (willingness to pay "
        f"{fmt(data.calibrated['willingness_to_pay'])} $ per unit of quality).")
    counts = {k: sum(r[k] for r in data.whatif.to_pylist()) for k, _ in _COUNTS}
    quality_source, cost_source = sources(counts)
    return {
        "curve": f"<p>The router swept over willingness to pay (line), each single agent, the zero router's hull "
                 f"(dashed: mixing single agents at random) and the oracle. <b>AIQ router "
                 f"{fmt(aiq['aiq_router'], 4)}</b> against <b>zero router {fmt(aiq['aiq_zero_router'], 4)}</b> "
                 f"over mean costs {fmt(aiq['c_min'])} to {fmt(aiq['c_max'])} $.{calibrated}</p>",
        "whatif": f"<p>What each total budget would have bought over these requests (Lagrangian allocation), "
                  f"spend actually spent against quality; quality threshold {fmt(data.quality_threshold, 4)} "
                  f"({html.escape(data.threshold_note)}). Sources over all budgets: quality "
                  f"{html.escape(quality_source)}; cost {html.escape(cost_source)}.</p>",
        "mix": "<p>Share of the requests each agent serves under each policy"
               + (", the log's actual choices first" if data.actual is not None else "") + ".</p>",
        "savings": "<p>Total cost and mean quality per policy"
                   + (", with savings against the log's actual policy" if data.actual is not None else
                      " (no actual policy in this log: no savings)")
                   + "; each figure's source: <i>observed</i> (the log's outcome), <i>category mean</i>, "
                     "<i>predicted</i> (the outcome router), <i>prior</i> (the agent's quality_score); cost "
                     "<i>logged</i> or <i>estimated</i>.</p>"}


def page(data: ReportData, svgs: Mapping[str, str], *, version: str, library: str, render_seconds: float) -> str:
    """The whole HTML text of a report from its data and its four charts' SVG."""
    texts = _texts(data)
    tables = {"curve": table_html("curve", data.curve.to_pylist(), CURVE_COLUMNS),
              "whatif": table_html("whatif", data.whatif.to_pylist(), WHATIF_COLUMNS),
              "mix": table_html("mix", data.mix, MIX_COLUMNS),
              "savings": table_html("savings", data.policies, SAVINGS_COLUMNS)}
    titles = {"curve": "Cost-quality curve", "whatif": "Budget what-if frontier", "mix": "Agent mix per policy",
              "savings": "Savings and each figure's source"}
    sections = "\n".join(_section(n, titles[n], texts[n], svgs[n], tables[n]) for n in CHARTS)
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

