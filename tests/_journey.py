"""The README's journey as code: its bash blocks in order, run as written in an empty folder by the real CLI of
this checkout (a `tinydancer` on PATH that runs ``python -m tinydancer_duck.cli`` with this checkout first on
PYTHONPATH, HOME in the folder so no default store is touched). Used by tests/test_journey.py and
benchmarks/report_example.py (which turns the journey's report into docs/report.png)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def journey_text(readme: str | None = None) -> str:
    """The README's section "The journey", up to the next section."""
    text = README.read_text() if readme is None else readme
    return text.split("\n## The journey\n", 1)[1].split("\n## ", 1)[0]


def blocks(readme: str | None = None) -> list[str]:
    """The journey's bash blocks, in order, without the list's indentation."""
    return [re.sub(r"(?m)^ {0,3}", "", block) for block in
            re.findall(r"```bash\n(.*?)```", journey_text(readme), flags=re.DOTALL)]


def expected_report(readme: str | None = None) -> list[str]:
    """The lines the README says the journey's `tinydancer report` prints first (its ```text block)."""
    found = re.findall(r"```text\n(.*?)```", journey_text(readme), flags=re.DOTALL)
    return [line.strip() for line in found[0].strip().splitlines()] if found else []


@dataclass(frozen=True)
class Step:
    """One command of the journey as it ran: the line, its exit code, seconds and output."""

    command: str
    code: int
    seconds: float
    stdout: str
    stderr: str


def commands(block: str) -> list[str]:
    """A block's commands, one per line (a trailing comment is the shell's)."""
    return [line for line in block.strip().splitlines() if line.strip() and not line.lstrip().startswith("#")]


def run_journey(folder: Path, *, timeout: float = 900) -> list[list[Step]]:
    """Run every block in ``folder`` (empty), command by command in one shell each, stopping at the first failure;
    the steps per block."""
    shim = folder.parent / f"{folder.name}-bin"
    shim.mkdir(exist_ok=True)
    script = shim / "tinydancer"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tinydancer_duck.cli "$@"\n')
    script.chmod(0o755)
    env = {**{k: v for k, v in os.environ.items() if k != "TINYDANCER_HOME"},
           "PATH": f"{shim}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(folder),
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done: list[list[Step]] = []
    for block in blocks():
        steps = []
        for command in commands(block):
            started = time.perf_counter()
            ran = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=folder, env=env, text=True,
                                 capture_output=True, timeout=timeout, check=False)
            steps.append(Step(command, ran.returncode, time.perf_counter() - started, ran.stdout, ran.stderr))
            if ran.returncode:
                return [*done, steps]
        done.append(steps)
    return done
