"""Build a report: gather its figures, draw its charts, write one HTML file (nothing is written on an error)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tinydancer_duck.snapshot import RoutingSnapshot

from ._charts import chart_library, render
from ._data import ReportData, gather
from ._html import chart_specs, check_report_path, page


def build_report(source: RoutingSnapshot | Any, log: Any, **options: Any) -> tuple[str, ReportData]:
    """(the HTML text, the figures it shows) of a report over ``log`` replayed by ``source`` (a
    :class:`~tinydancer_duck.RoutingSnapshot` or an Engine); options as :func:`~tinydancer_duck.report.gather`."""
    from tinydancer_duck import __version__

    library = chart_library()  # fails naming vl-convert-python before any work when it is missing
    data = gather(source, log, **options)
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
