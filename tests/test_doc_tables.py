"""benchmarks/doc_tables.py: the docs' copies of generated tables are the files' current text."""

import pytest

from benchmarks import doc_tables
from simsgd.cli import run


def test_the_docs_include_the_current_tables(capsys):
    assert run(doc_tables.main, ["--check"], prog="doc_tables") == 0, capsys.readouterr().err


def test_a_stale_copy_is_found_and_replaced(tmp_path):
    (tmp_path / "table.md").write_text("| a | b |\n|---|---|\n| 1 | 2 |\n")
    stale_copy = "| a | b |\n|---|---|\n| 1 | 3 |\n"
    doc = f"Intro.\n\n<!-- begin: table.md -->\n{stale_copy}<!-- end: table.md -->\n\nEnd.\n"
    new, stale = doc_tables.sync(doc, root=str(tmp_path))
    assert stale == ["table.md"] and "| 1 | 2 |" in new and "| 1 | 3 |" not in new
    again, stale = doc_tables.sync(new, root=str(tmp_path))
    assert again == new and stale == []  # current now


def test_a_missing_file_is_one_error_line(tmp_path):
    with pytest.raises(doc_tables.UsageError, match="cannot be read"):
        doc_tables.sync("<!-- begin: none.md -->\n<!-- end: none.md -->\n", root=str(tmp_path))
