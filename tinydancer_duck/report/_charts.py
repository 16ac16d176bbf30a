"""Vega-Lite chart specs of a replay's figures, rendered offline to SVG or PNG by vl-convert.

Each ``*_chart`` function is pure: tables and dicts in, a Vega-Lite spec (a plain dict) out; :func:`render` turns a
spec into SVG text or PNG bytes with vl-convert (its own Vega and Vega-Lite inside a Rust binary: no browser, no
network; ``allowed_base_urls=[]`` refuses any data URL). Every layer is named, so in the SVG the marks of layer
``router_points`` sit in ``<g class="mark-symbol role-mark router_points_marks">``, one element per datum, and each
datum's ``description`` (its figures) becomes the element's tooltip.

Chart library (measured on this 2-core machine, README "Report"): vl-convert-python 1.9 is one 33.5 MB wheel
(84 MB installed, no dependencies); the first chart of a process takes ~0.6 s (its JavaScript engine starts), later
ones ~0.1 s; the page inlines static SVG, so it carries no JavaScript.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from tinydancer_duck.errors import InvalidArgument, TinydancerError

CHARTS_MISSING = ("charts need vl-convert-python, a dependency of tinydancer_duck missing from this environment: "
                  "pip install vl-convert-python")
CHART_FORMATS = (".svg", ".png")
WIDTH, HEIGHT = 560, 330
#: figures below this magnitude are shown as "<0.000001" (a willingness to pay of 1e-13 is 0 for a reader)
TINY = 1e-6
#: series of the cost-quality and what-if charts, in legend order, and their colors (Tableau 10).
SERIES = {"router": "#4c78a8", "zero router hull": "#9d9d9d", "single agent": "#72b7b2", "oracle": "#e45756",
          "actual policy": "#f58518", "router at calibrated price": "#54a24b", "frontier (measured)": "#4c78a8",
          "frontier (expected)": "#b279a2", "quality threshold": "#e45756", "actual spend": "#f58518"}
#: each series' mark in the chart and its legend (one scale for both, so the legend shows what is drawn); "stroke"
#: is a line or a rule.
SHAPES = {"router": "circle", "zero router hull": "stroke", "single agent": "circle", "oracle": "diamond",
          "actual policy": "square", "router at calibrated price": "triangle-up", "frontier (measured)": "circle",
          "frontier (expected)": "stroke", "quality threshold": "stroke", "actual spend": "stroke"}
#: how the page's text names a shape.
SHAPE_WORDS = {"circle": "circle", "diamond": "diamond", "square": "square", "triangle-up": "triangle",
               "stroke": "line"}
#: colours of agents (Tableau 20): an agent takes the one its name hashes to, or the next free one, so it keeps its
#: colour from one report to the next.
AGENT_PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6",
                 "#9d755d", "#bab0ac", "#9ecae9", "#ffbf79", "#88d27a", "#ff9d98", "#83bcb6", "#f2cf5b",
                 "#d6a5c9", "#fcbfd2", "#d8b5a5", "#79706e")


def short_name(agent: str) -> str:
    """An agent's name without its provider prefix ('meta/llama-2-70b-chat' -> 'llama-2-70b-chat')."""
    return agent.rsplit("/", 1)[-1]


def fmt(value: Any, digits: int = 3) -> str:
    """A figure for people: ``digits`` significant digits in plain notation (0.0000807, never 8.07e-05; 12300),
    '<0.000001' below a millionth, '–' for a missing one, '∞' for infinity."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if 0 < abs(value) < TINY:
            return ("-" if value < 0 else "") + f"<{TINY:f}".rstrip("0")
        return "0" if value == 0 else format(Decimal(f"{value:.{digits}g}"), "f")
    return str(value)


def share(value: float) -> str:
    """A share of requests as a whole percentage; '<1%' for a few requests rather than '0%'."""
    return "<1%" if 0 < value < 0.005 else f"{value:.0%}"


def agent_colors(agents: Sequence[str]) -> dict[str, str]:
    """A colour per agent: the palette entry its name hashes to (crc32, the same in every process), else the next
    free one, taken in name order; beyond the palette's size colours repeat."""
    taken: dict[int, str] = {}
    out = {}
    for agent in sorted(set(agents)):
        slot = zlib.crc32(agent.encode()) % len(AGENT_PALETTE)
        for step in range(len(AGENT_PALETTE)):
            if (slot + step) % len(AGENT_PALETTE) not in taken:
                slot = (slot + step) % len(AGENT_PALETTE)
                break
        taken[slot] = agent
        out[agent] = AGENT_PALETTE[slot]
    return out


def _scale(values: Sequence[float]) -> dict:
    """Log scale when every value is > 0 and they span more than a factor of 20 (RouterBench's costs span 200x)."""
    positive = [v for v in values if v is not None and v > 0]
    if positive and len(positive) == len(values) and max(positive) > 20 * min(positive):
        return {"type": "log"}
    return {"type": "linear", "zero": False}


def _encoding(x: str, y: str, x_title: str, y_title: str, scale: dict, present: set[str]) -> dict:
    """Shared by every layer: the axes, the description, and a color legend of only the series drawn."""
    shown = [s for s in SERIES if s in present]
    legend = {"orient": "bottom", "columns": 3}
    return {"x": {"field": x, "type": "quantitative", "title": x_title, "scale": scale},
            "y": {"field": y, "type": "quantitative", "title": y_title, "scale": {"zero": False}},
            "color": {"field": "series", "type": "nominal", "title": None,
                      "scale": {"domain": shown, "range": [SERIES[s] for s in shown]}, "legend": legend},
            "shape": {"field": "series", "type": "nominal", "title": None,
                      "scale": {"domain": shown, "range": [SHAPES[s] for s in shown]}, "legend": legend},
            "description": {"field": "description"}}


def _points(name: str, series: str, x: str, y: str, size: int = 70) -> dict:
    """The points of one series, in the shape its legend shows (:data:`SHAPES`, through the shared encoding)."""
    return {"name": name, "transform": [{"filter": {"field": "series", "equal": series}}],
            "mark": {"type": "point", "filled": True, "size": size, "opacity": 0.9}}


def _labels(name: str, series: str) -> dict:
    return {"name": name, "transform": [{"filter": {"field": "series", "equal": series}}],
            "mark": {"type": "text", "align": "left", "dx": 6, "dy": -4, "fontSize": 9, "color": "#555"},
            "encoding": {"text": {"field": "label"}, "color": {"value": "#555"}}}


def _rule(name: str, series: str, across: str) -> dict:
    """A rule of one datum spanning the whole ``across`` axis (x: a horizontal rule)."""
    return {"name": name, "transform": [{"filter": {"field": "series", "equal": series}}],
            "mark": {"type": "rule", "strokeDash": [6, 3], "strokeWidth": 1.5}, "encoding": {across: None}}


def _bars(name: str, y: str) -> dict:
    """A vertical bar from ``<y>_low`` to ``<y>_high`` at each datum that has them: a figure's 95% interval."""
    low, high = f"{y}_low", f"{y}_high"
    return {"name": name, "transform": [{"filter": f"isValid(datum.{low}) && isValid(datum.{high})"}],
            "mark": {"type": "rule", "strokeWidth": 1.5, "opacity": 0.45},
            "encoding": {"y": {"field": low, "type": "quantitative"}, "y2": {"field": high},
                         "shape": None}}


def _bounded(row: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The interval of ``row[key]`` under the chart's names (``quality_low``, ``quality_high``), when it has one."""
    low, high = row.get(f"{key}_low"), row.get(f"{key}_high")
    return {} if low is None or high is None else {"quality_low": low, "quality_high": high}


def _with_interval(text: str, bounds: Mapping[str, Any]) -> str:
    return f"{text} ({fmt(bounds['quality_low'])}–{fmt(bounds['quality_high'])})" if bounds else text


def _line(name: str, series: str, x: str, y: str, dash: Sequence[int] = ()) -> dict:
    mark: dict[str, Any] = {"type": "line", "strokeWidth": 2, "interpolate": "linear"}
    if dash:
        mark["strokeDash"] = list(dash)
    return {"name": name, "transform": [{"filter": {"field": "series", "equal": series}}], "mark": mark,
            "encoding": {"order": {"field": "order", "type": "quantitative"}}}


def curve_chart(table: pa.Table, aiq: Mapping[str, Any] | None = None, *, actual: Mapping[str, Any] | None = None,
                calibrated: Mapping[str, Any] | None = None) -> dict:
    """The cost-quality chart of a :func:`tinydancer_duck.replay.curve` table: the router's points joined by a line,
    each single agent labelled, the zero router's hull (dashed), the oracle, and when given the log's ``actual``
    policy and the router at its ``calibrated`` price (dicts with mean ``cost`` and ``quality`` per request).

    Mark layers (class ``<name>_marks`` in the SVG): hull_line, router_line, router_points (one per willingness to
    pay), agent_points and agent_labels (one per agent), oracle_point, and actual_point / calibrated_point;
    quality_bars, one per point whose quality has a 95% interval (``quality_low``, ``quality_high``)."""
    rows: list[dict] = []
    for r in table.to_pylist():
        series = {"router": "router", "zero_router": "single agent", "oracle": "oracle"}[r["series"]]
        label = short_name(r["label"]) if series == "single agent" else r["label"]
        bounds = _bounded(r, "quality")
        rows.append({"series": series, "label": label, "cost": r["cost"], "quality": r["quality"], **bounds,
                     "order": r["willingness_to_pay"] if series == "router" else r["cost"],
                     "description": _with_interval(f"{r['label']}: ${fmt(r['cost'])} per request, quality "
                                                   f"{fmt(r['quality'])}", bounds)})
        if r["series"] == "zero_router" and r["on_hull"]:
            rows.append({**rows[-1], "series": "zero router hull", "quality_low": None, "quality_high": None})
    for series, point in (("actual policy", actual), ("router at calibrated price", calibrated)):
        if point is not None:
            rows.append({"series": series, "label": series, "cost": point["cost"], "quality": point["quality"],
                         "order": 0, "description": f"{series}: ${fmt(point['cost'])} per request, "
                                                    f"quality {fmt(point['quality'])}"})
    for row in rows:  # Vega-Lite cannot order a line by infinity
        row["order"] = 1e300 if row["order"] is not None and math.isinf(row["order"]) else row["order"]
    scale = _scale([r["cost"] for r in rows])
    title = "Cost and quality per request"
    if aiq:
        title += f": AIQ router {fmt(aiq.get('aiq_router'), 3)} vs zero router {fmt(aiq.get('aiq_zero_router'), 3)}"
    x_title = "mean cost per request ($" + (", log scale)" if scale["type"] == "log" else ")")
    layers = [_bars("quality_bars", "quality"),
              _line("hull_line", "zero router hull", "cost", "quality", (5, 4)),
              _line("router_line", "router", "cost", "quality"),
              _points("router_points", "router", "cost", "quality", 30),
              _points("agent_points", "single agent", "cost", "quality"),
              _labels("agent_labels", "single agent"),
              _points("oracle_point", "oracle", "cost", "quality", 150)]
    if actual is not None:
        layers.append(_points("actual_point", "actual policy", "cost", "quality", 130))
    if calibrated is not None:
        layers.append(_points("calibrated_point", "router at calibrated price", "cost", "quality", 130))
    encoding = _encoding("cost", "quality", x_title, "mean quality", scale, {r["series"] for r in rows})
    return _spec(title, rows, encoding, layers)


def whatif_chart(table: pa.Table, *, agents: Sequence[Mapping[str, Any]] = (), actual: Mapping[str, Any] | None = None,
                 quality_threshold: float | None = None) -> dict:
    """The budget what-if frontier of a :func:`tinydancer_duck.replay.budget_whatif` table: total spend actually
    spent (x) against mean measured quality (y), the expected quality dashed, the ``quality_threshold`` as a
    horizontal rule, each single agent (``agents``: dicts with label, total_cost, quality) and the log's ``actual``
    policy (total_cost, quality) as points, its spend as a vertical rule.

    Mark layers: frontier_line, frontier_points (one per budget), expected_line, agent_points, agent_labels,
    threshold_rule, actual_rule, actual_point; quality_bars, one per measured point with a 95% interval."""
    rows: list[dict] = []
    for k, r in enumerate(table.to_pylist()):
        for series, field in (("frontier (measured)", "quality"), ("frontier (expected)", "expected_quality")):
            if r[field] is not None:
                bounds = _bounded(r, "quality") if field == "quality" else {}
                rows.append({"series": series, "label": f"${fmt(r['budget'])}", "spend": r["spend"],
                             "quality": r[field], "order": k, **bounds,
                             "description": _with_interval(f"budget ${fmt(r['budget'])}: spent ${fmt(r['spend'])}, "
                                                           f"{series.split()[1].strip('()')} quality "
                                                           f"{fmt(r[field])}", bounds)
                                            + f", {r['served']} of {r['requests']} served"})
    for agent in agents:
        rows.append({"series": "single agent", "label": short_name(agent["label"]), "spend": agent["total_cost"],
                     "quality": agent["quality"], "order": 0,
                     "description": f"always {agent['label']}: ${fmt(agent['total_cost'])}, "
                                    f"quality {fmt(agent['quality'])}"})
    if actual is not None:
        rows.append({"series": "actual policy", "label": "actual", "spend": actual["total_cost"],
                     "quality": actual["quality"], "order": 0,
                     "description": f"actual policy: ${fmt(actual['total_cost'])}, quality {fmt(actual['quality'])}"})
    scale = _scale([r["spend"] for r in rows])
    layers = [_bars("quality_bars", "quality"),
              _line("frontier_line", "frontier (measured)", "spend", "quality"),
              _points("frontier_points", "frontier (measured)", "spend", "quality", 50),
              _line("expected_line", "frontier (expected)", "spend", "quality", (4, 3)),
              _points("agent_points", "single agent", "spend", "quality"),
              _labels("agent_labels", "single agent")]
    if quality_threshold is not None:
        rows.append({"series": "quality threshold", "quality": quality_threshold,
                     "description": f"quality threshold {fmt(quality_threshold)}"})
        layers.append(_rule("threshold_rule", "quality threshold", "x"))
    if actual is not None:
        rows.append({"series": "actual spend", "spend": actual["total_cost"],
                     "description": f"actual spend ${fmt(actual['total_cost'])}"})
        layers += [_rule("actual_rule", "actual spend", "y"),
                   _points("actual_point", "actual policy", "spend", "quality", 130)]
    present = {r["series"] for r in rows}
    x_title = "total spend over the log ($" + (", log scale)" if scale["type"] == "log" else ")")
    title = "Budget what-if: quality bought by each total budget"
    if quality_threshold is not None:
        title += f" (threshold {fmt(quality_threshold, 3)})"
    return _spec(title, rows, _encoding("spend", "quality", x_title, "mean quality", scale, present), layers)


def mix_chart(mix: Sequence[Mapping[str, Any]]) -> dict:
    """Agent mix per policy: one stacked horizontal bar per policy, a segment per agent (share of the requests the
    policy served), each agent in its own colour (:func:`agent_colors`). ``mix``: dicts with policy, agent,
    requests, share. Mark layer: mix_bars (one rect per row)."""
    policies = list(dict.fromkeys(r["policy"] for r in mix))
    colors = {short_name(a): c for a, c in agent_colors([r["agent"] for r in mix]).items()}
    rows = [{"policy": r["policy"], "agent": short_name(r["agent"]), "share": r["share"],
             "description": f"{r['policy']}: {r['agent']} {r['requests']} requests ({r['share']:.1%})"} for r in mix]
    return {**_frame("Agent mix per policy (share of requests)", rows),
            "width": 420, "height": max(18 * len(policies), 60),
            "layer": [{"name": "mix_bars", "mark": {"type": "bar"},
                       "encoding": {"y": {"field": "policy", "type": "nominal", "title": None, "sort": policies,
                                          "axis": {"labelLimit": 200}},
                                    "x": {"field": "share", "type": "quantitative", "title": "share of requests",
                                          "axis": {"format": "%"}, "stack": "zero", "scale": {"domain": [0, 1]}},
                                    "color": {"field": "agent", "type": "nominal", "title": "agent",
                                              "scale": {"domain": list(colors), "range": list(colors.values())},
                                              "legend": {"orient": "bottom", "columns": 4}},
                                    "description": {"field": "description"}}}]}


def savings_chart(policies: Sequence[Mapping[str, Any]], actual: Mapping[str, Any] | None = None) -> dict:
    """Total cost and mean quality per policy side by side (``policies``: dicts with policy, total_cost, quality,
    sources), the actual policy's figures as rules. Mark layers: cost_bars and quality_bars (one rect per policy),
    cost_rule and quality_rule with an actual policy."""
    order = [p["policy"] for p in policies]
    rows = [{"policy": p["policy"], "total_cost": p["total_cost"], "quality": p["quality"],
             "description": f"{p['policy']}: ${fmt(p['total_cost'])} in all, quality {fmt(p['quality'])} "
                            f"({p['sources']})"} for p in policies]
    panels = []
    for field, title, color in (("total_cost", "total cost ($)", "#4c78a8"), ("quality", "mean quality", "#54a24b")):
        name = "cost" if field == "total_cost" else "quality"
        axis = {"labelLimit": 240} if not panels else None  # the second panel shares the first one's labels
        layer = [{"name": f"{name}_bars", "mark": {"type": "bar", "color": color},
                  "encoding": {"y": {"field": "policy", "type": "nominal", "title": None, "sort": order,
                                     "axis": axis},
                               "x": {"field": field, "type": "quantitative", "title": title},
                               "description": {"field": "description"}}}]
        if actual is not None and actual.get(field) is not None:
            layer.append({"name": f"{name}_rule", "data": {"values": [{"v": actual[field]}]},
                          "mark": {"type": "rule", "color": "#f58518", "strokeWidth": 2, "strokeDash": [4, 2]},
                          "encoding": {"x": {"field": "v", "type": "quantitative"}}})
        panels.append({"width": 190, "height": max(20 * len(order), 60), "layer": layer})
    title = "Cost and quality per policy" + (" (dashed: the log's actual policy)" if actual is not None else "")
    return {**_frame(title, rows), "hconcat": panels, "resolve": {"scale": {"y": "shared"}}}


def _frame(title: str, rows: list[dict]) -> dict:
    return {"$schema": "https://vega.github.io/schema/vega-lite/v6.json", "title": title,
            "data": {"values": rows}, "config": {"font": "sans-serif", "view": {"stroke": "#ddd"}},
            "background": "white"}


def _spec(title: str, rows: list[dict], encoding: dict, layers: list[dict]) -> dict:
    return {**_frame(title, rows), "width": WIDTH, "height": HEIGHT, "encoding": encoding, "layer": layers}


def _vl_convert() -> Any:
    try:
        import vl_convert
    except ImportError:
        raise TinydancerError(CHARTS_MISSING) from None
    return vl_convert


def chart_library() -> str:
    """'vl-convert-python X (Vega-Lite Y)'; a one-line error naming the package when it is missing."""
    from importlib.metadata import version

    vlc = _vl_convert()
    return f"vl-convert-python {version('vl-convert-python')} (Vega {vlc.get_vega_version()})"


def render(spec: dict, fmt_: str = "svg") -> str | bytes:
    """SVG text (each mark's description as its ``<title>`` tooltip) or PNG bytes (2x scale) of a spec, offline."""
    vlc = _vl_convert()
    try:  # vl-convert's one seam: its errors (a bad spec, a refused data URL) are ValueErrors
        if fmt_ == "png":
            return vlc.vegalite_to_png(spec, scale=2, allowed_base_urls=[])
        svg = vlc.vegalite_to_svg(spec, allowed_base_urls=[])
    except ValueError as exc:
        raise InvalidArgument("spec", spec.get("title"), f"cannot be drawn: {str(exc).splitlines()[0]}") from exc
    return re.sub(r'<(path|line) aria-label="([^"]*)"([^>]*?)/>', r'<\1 aria-label="\2"\3><title>\2</title></\1>', svg)


def check_chart_path(argument: str, path: str | Path) -> Path:
    """``path`` as a Path when its suffix is .svg or .png and its folder exists; errors name ``argument``."""
    target = Path(path)
    if target.suffix.lower() not in CHART_FORMATS:
        raise InvalidArgument(argument, str(path), "must end in .svg or .png")
    if not target.parent.is_dir():
        raise InvalidArgument(argument, str(path), f"its folder {str(target.parent)!r} does not exist")
    return target


def save_chart(spec: dict, path: str | Path, *, argument: str = "chart") -> Path:
    """Render ``spec`` to ``path`` as SVG or PNG by its suffix; the path written."""
    target = check_chart_path(argument, path)
    image = render(spec, target.suffix.lower().lstrip("."))
    if isinstance(image, str):
        target.write_text(image, encoding="utf-8")
    else:
        target.write_bytes(image)
    return target
