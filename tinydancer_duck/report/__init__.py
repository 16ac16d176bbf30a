"""The report room: one self-contained HTML page of a log's replays, and the charts the CLI writes as SVG or PNG.

What a report shows (:mod:`._data` gathers it through the replay room; :mod:`._charts` draws it as Vega-Lite
rendered offline by vl-convert; :mod:`._html` lays out the page): the cost-quality curve
with each single agent, the oracle, the log's actual policy and the router's points with their AIQs; the budget
what-if frontier against the actual spend and the quality threshold; the agent mix per policy; savings against the
actual policy with each figure's source; and the table behind each chart; above them, one sentence per question
(:mod:`._headline`), all from one :class:`ReportData`.

May import: replay, snapshot, ground.
"""

from ._build import build_report, write_report
from ._charts import (
    CHART_FORMATS,
    CHARTS_MISSING,
    chart_library,
    check_chart_path,
    curve_chart,
    mix_chart,
    render,
    save_chart,
    savings_chart,
    whatif_chart,
)
from ._data import ReportData, actual_and_calibrated, default_budgets, gather, unobserved_agents
from ._headline import best_policy
from ._html import CHARTS, check_report_path

__all__ = [
    "CHARTS",
    "CHARTS_MISSING",
    "CHART_FORMATS",
    "ReportData",
    "actual_and_calibrated",
    "best_policy",
    "build_report",
    "chart_library",
    "check_chart_path",
    "check_report_path",
    "curve_chart",
    "default_budgets",
    "gather",
    "mix_chart",
    "render",
    "save_chart",
    "savings_chart",
    "unobserved_agents",
    "whatif_chart",
    "write_report",
]
