"""Build a report: gather its figures, draw its charts, write one HTML file (nothing is written on an error)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tinydancer_duck.snapshot import RoutingSnapshot

from ._charts import chart_library, render
from ._data import ReportData, gather
from ._html import chart_specs, check_report_path, page


def build_report(source: RoutingSnapshot | Any, log: Any, *, budgets: Sequence[float] | None = None,
                 quality_threshold: float | None = None, columns: Any = None, observed_only: bool = False,
                 holdout: Any = None, points: int = 40, **constraints: Any) -> tuple[str, ReportData]:
    """(the HTML text, the figures it shows) of a report over ``log`` replayed by ``source`` (a
    :class:`~tinydancer_duck.RoutingSnapshot` or an Engine); arguments as :func:`~tinydancer_duck.report.gather`."""
    from tinydancer_duck import __version__

    library = chart_library()  # fails with the extra's name before any work when vl-convert is missing
    data = gather(source, log, budgets=budgets, quality_threshold=quality_threshold, columns=columns,
                  observed_only=observed_only, holdout=holdout, points=points, **constraints)
    started = time.perf_counter()
    svgs = {name: str(render(spec, "svg")) for name, spec in chart_specs(data).items()}
    text = page(data, svgs, version=__version__, library=library, render_seconds=time.perf_counter() - started)
    return text, data


def write_report(source: RoutingSnapshot | Any, log: Any, path: str | Path, **options: Any) -> dict[str, Any]:
    """Write the report of ``log`` to ``path`` (.html; its folder must exist, checked before any work) and return
    {"path", "bytes", "seconds", "data"}; options as :func:`build_report`."""
    target = check_report_path("output", path)
    started = time.perf_counter()
    text, data = build_report(source, log, **options)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, target)
    return {"path": str(target), "bytes": target.stat().st_size, "seconds": time.perf_counter() - started,
            "data": data}
