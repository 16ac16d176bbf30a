"""`tinydancer report` on the shared RouterBench logs: file size and generation time per log, and optionally a
screenshot taken by the browser test's own headless Chromium (the README's docs/report.png is the journey's report:
benchmarks/report_example.py).

Data: ../shared/datasets/routerbench/{arc_challenge,mbpp,winograde}_train.parquet (skips cleanly without them), each
alone and the three concatenated. Per log, a fresh store built as a user would: ``tinydancer agents import LOG``,
``tinydancer train-outcomes LOG --holdout 0.2`` (so the router's points are out of sample), then the measured command
``tinydancer report LOG --holdout 0.2 -o LOG.html`` in its own process (wall time, Python's start included).

    python benchmarks/report_routerbench.py [--out DIR] [--screenshot routerbench.png]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "routerbench"
FILES = ("arc_challenge", "mbpp", "winograde")
CLI = "import sys; from tinydancer_duck.cli import main; sys.exit(main())"


def tinydancer(*args: str, cwd: Path) -> tuple[float, str]:
    """Run one `tinydancer` command in a fresh process from this checkout; (wall seconds, stdout)."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, env=env, check=False,
                          cwd=cwd)
    if done.returncode:
        raise SystemExit(f"tinydancer {' '.join(args)} failed:\n{done.stderr}")
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="folder for the HTML reports (default: a temporary one)")
    parser.add_argument("--screenshot", default="", help="where the concatenated log's screenshot goes (default: "
                        "none)")
    parser.add_argument("--scale", type=float, default=0.8, help="screenshot pixels per CSS pixel (default 0.8)")
    args = parser.parse_args()
    if not all((DATA / f"{name}_train.parquet").exists() for name in FILES):
        print(f"skipped: the RouterBench logs are not in {DATA}")
        return
    out = Path(args.out or tempfile.mkdtemp(prefix="tinydancer-report-"))
    out.mkdir(parents=True, exist_ok=True)
    logs = {name: DATA / f"{name}_train.parquet" for name in FILES}
    logs["routerbench (all three)"] = out / "routerbench.parquet"
    pl.concat([pl.read_parquet(p) for p in logs.values() if p.exists()], how="vertical_relaxed").write_parquet(
        logs["routerbench (all three)"])
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print("| log | prompts | replayed (held out) | report size | `tinydancer report` wall time (its own figures + "
          "charts) | AIQ router / zero router |")
    print("|---|---|---|---|---|---|")
    for name, log in logs.items():
        key = name.split()[0]
        store = f"store-{key}"
        tinydancer("agents", "import", str(log), "--store", store, cwd=out)
        tinydancer("train-outcomes", str(log), "--holdout", "0.2", "--store", store, cwd=out)
        html = out / f"{key}.html"
        seconds, said = tinydancer("report", log.name if log.parent == out else str(log), "--holdout", "0.2",
                                   "--store", store, "-o", html.name, cwd=out)
        written = next(line for line in said.splitlines() if line.startswith("report written to "))
        own, figures = written.rsplit(" in ", 1)[1].split(" (", 1)  # "3.2 s (373 requests; AIQ router ...)"
        replayed = figures.split()[0]
        aiq = figures.split("AIQ router ")[1].rstrip(")").replace(", zero router", " /")
        rows = pl.scan_parquet(log).select(pl.len()).collect().item()
        print(f"| {name} | {rows:,} | {replayed} | {html.stat().st_size / 1024:.0f} KB | {seconds:.1f} s ({own}) "
              f"| {aiq} |")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.screenshot:
        sys.path.insert(0, str(ROOT / "tests"))
        from _browser import open_page

        with open_page(out / "routerbench.html", width=1400) as page:
            png = page.screenshot(Path(args.screenshot), scale=args.scale)
        print(f"screenshot: {args.screenshot} ({len(png) / 1024:.0f} KB); reports in {out}")


if __name__ == "__main__":
    main()
