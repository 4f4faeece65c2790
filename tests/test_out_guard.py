"""The session check of conftest.py: a test that writes into the checkout's out/ fails the run."""

import os
from pathlib import Path

from conftest import out_snapshot

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py").read_text()


def test_snapshot_sees_new_and_rewritten_files(tmp_path):
    (tmp_path / "out" / "bounds").mkdir(parents=True)
    empty = out_snapshot(tmp_path)
    report = tmp_path / "out" / "bounds" / "REPORT.md"
    report.write_text("# real\n")
    first = out_snapshot(tmp_path)
    assert first != empty
    os.utime(report, ns=(0, 0))
    report.write_text("# fake\n")  # same size, new contents: what git status --ignored misses
    assert out_snapshot(tmp_path) != first
    assert out_snapshot(tmp_path) == out_snapshot(tmp_path)  # control: nothing written, nothing changed


def _session(pytester, body):
    # The suite's conftest, with the checkout's root replaced by pytester's folder.
    pytester.makeconftest(
        CONFTEST.replace("Path(__file__).resolve().parents[1]", f"Path({str(pytester.path)!r})")
    )
    pytester.makepyfile(test_inner=body)
    return pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")


def test_a_test_writing_into_out_fails_the_session(pytester):
    body = (
        "import pathlib\n"
        "def test_writes():\n"
        "    pathlib.Path('out').mkdir()\n"
        "    pathlib.Path('out/fake.png').write_text('x')\n"
    )
    result = _session(pytester, body)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*the test suite changed the checkout's out/*out/fake.png*"])


def test_a_test_writing_into_tmp_passes(pytester):
    body = "def test_writes(tmp_path):\n    (tmp_path / 'fake.png').write_text('x')\n"
    _session(pytester, body).assert_outcomes(passed=1)
