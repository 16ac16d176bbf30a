"""The seed plan's SQL examples, verbatim and in the seed's order, on a fresh store: every statement runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "tiny-dancer-routing-plan.md"


def seed_statements() -> list[str]:
    """The statements of the ```sql blocks of the plan's "SQL Interface" section, comments dropped."""
    text = SEED.read_text(encoding="utf-8")
    section = text[text.index("## SQL Interface"): text.index("## Implementation Phases")]
    statements = []
    for block in re.findall(r"```sql\n(.*?)```", section, re.DOTALL):
        code = "\n".join(line.split("--", 1)[0] if not line.lstrip().startswith("--") else ""
                         for line in block.splitlines())
        statements += [s.strip() for s in code.split(";") if s.strip()]
    return statements


@pytest.mark.skipif(not SEED.exists(), reason=f"the seed plan is not beside the repo ({SEED})")
def test_every_seed_example_runs_in_order_on_a_fresh_store(con):
    statements = seed_statements()
    assert len(statements) == 15
    results = {}
    for statement in statements:
        if "FROM pending_requests" in statement:  # the user's own table of requests to classify
            con.execute("CREATE TABLE pending_requests AS SELECT * FROM (VALUES (1, 'Reset my password'), "
                        "(2, 'Write a sorting function')) t(request_id, content)")
        results[statement] = con.execute(statement).fetchall()
    listed = next(rows for s, rows in results.items() if "ruvector_list_agents" in s)
    assert sorted(row[0] for row in listed) == ["claude-3-haiku", "code-specialist", "gpt-4"]
    optimized = next(rows for s, rows in results.items() if "ruvector_optimize_budget" in s)
    assert optimized and all("assumed" in row[-1] for row in optimized)  # no usage yet: an assumption, said so
    batch = next(rows for s, rows in results.items() if "ruvector_batch_route" in s)
    assert len(batch) == 3
    classified = next(rows for s, rows in results.items() if "ruvector_classify_request" in s)
    assert [row[0] for row in classified] == [1, 2] and all(row[1] is not None for row in classified)
