"""The README's example report: run the README's journey as written in an empty folder (the real command line of
this checkout, tests/_journey.py), then photograph its report.html in the browser test's headless Chromium into
docs/report.png, and print what each command took and the report's headline (the README quotes it; tests/test_journey.py
checks the quote against a fresh run).

    python benchmarks/report_example.py [--screenshot docs/report.png] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _browser import open_page
from _journey import run_journey


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", default=str(ROOT / "docs" / "report.png"), help="where the screenshot goes")
    parser.add_argument("--scale", type=float, default=0.8, help="screenshot pixels per CSS pixel (default 0.8)")
    parser.add_argument("--keep", default=None, help="run the journey in this (new, empty) folder and keep it")
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="tinydancer-journey-")) / "journey"
    folder.mkdir(parents=True)
    try:
        steps = [step for block in run_journey(folder) for step in block]
        for step in steps:
            print(f"{step.seconds:6.1f} s  exit {step.code}  {step.command}")
            if step.code:
                raise SystemExit(f"failed:\n{step.stdout}\n{step.stderr}")
        print("\nthe report printed:\n" + steps[-1].stdout)
        with open_page(folder / "report.html", width=1400) as page:
            png = page.screenshot(Path(args.screenshot), scale=args.scale)
        print(f"screenshot: {args.screenshot} ({len(png) / 1024:.0f} KB)")
    finally:
        if not args.keep:
            shutil.rmtree(folder.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
