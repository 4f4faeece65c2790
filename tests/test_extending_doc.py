"""docs/extending.md runs as written: its ```python blocks, in order, in one namespace."""

import re
from pathlib import Path

import pytest

from simsgd import registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_worked_example_uses_the_words_the_issue_asks_for():
    code = "\n".join(BLOCKS)
    for word in ("compressor", "theorem4_check", "vacuous", "sweep"):
        assert word in code.lower()


@pytest.mark.slow
def test_extending_doc_runs_as_written(capsys):
    namespace = {}
    try:
        for block in BLOCKS:
            exec(compile(block, str(DOC), "exec"), namespace)
    finally:
        registry.unregister("top-rows")
    out = capsys.readouterr().out
    check = namespace["theorem4_check"]
    assert check.vacuous and check.status == "vacuous" and "vacuous: True" in out  # what the text says
    table = namespace["table"]
    assert {row["method"] for row in table} == {"powersgd", "powersgd+", "top-rows"} and len(
        table
    ) == 2 + 6 + 2
    runs = namespace["runs"]
    assert runs["top rows (mine)"].floats_sent[0] == 2 * 8 + 2  # k = rank = 2 rows of n = 8, and indices
    assert runs["uncompressed"].loss[:, -1].mean() < runs["uncompressed"].loss[:, 0].mean()
